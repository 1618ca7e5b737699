//! Tenants (PostgreSQL).

use async_trait::async_trait;

use super::PostgresStore;
use crate::error::{StoreError, StoreResult};
use crate::models::Tenant;
use crate::rows;
use crate::sql;
use crate::store::TenantStore;

/// `NotFound` unless tenant `id` exists (and keeps it from being deleted
/// until the transaction ends).
pub async fn require<'e, E>(ex: E, id: &str) -> StoreResult<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM tenants WHERE id = $1 FOR SHARE")
        .bind(id)
        .fetch_optional(ex)
        .await?;
    found
        .map(|_| ())
        .ok_or_else(|| StoreError::not_found("Tenant", id))
}

#[async_trait]
impl TenantStore for PostgresStore {
    async fn get_tenant(&self, id: &str) -> StoreResult<Tenant> {
        let row = sqlx::query(sql::tenants::GET)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found("Tenant", id))?;
        rows::tenant(&row)
    }

    async fn upsert_tenant(&self, t: &Tenant) -> StoreResult<Tenant> {
        sqlx::query(
            "INSERT INTO tenants (id, max_concurrency, max_active_runs, max_items_per_dataset) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (id) DO UPDATE SET max_concurrency = excluded.max_concurrency, \
         max_active_runs = excluded.max_active_runs, \
         max_items_per_dataset = excluded.max_items_per_dataset",
        )
        .bind(&t.id)
        .bind(t.max_concurrency)
        .bind(t.max_active_runs)
        .bind(t.max_items_per_dataset)
        .execute(&self.pool)
        .await?;
        Ok(t.clone())
    }
}
