//! Tenants (SQLite).

use async_trait::async_trait;

use super::SqliteStore;
use crate::error::{StoreError, StoreResult};
use crate::models::Tenant;
use crate::rows;
use crate::rules::{now, to_ms};
use crate::sql;
use crate::store::TenantStore;

/// `NotFound` unless tenant `id` exists.
pub async fn require<'e, E>(ex: E, id: &str) -> StoreResult<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM tenants WHERE id = ?")
        .bind(id)
        .fetch_optional(ex)
        .await?;
    found
        .map(|_| ())
        .ok_or_else(|| StoreError::not_found("Tenant", id))
}

#[async_trait]
impl TenantStore for SqliteStore {
    async fn get_tenant(&self, id: &str) -> StoreResult<Tenant> {
        let row = sqlx::query(sql::tenants::GET)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .ok_or_else(|| StoreError::not_found("Tenant", id))?;
        rows::tenant(&row)
    }

    async fn upsert_tenant(&self, t: &Tenant) -> StoreResult<Tenant> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
        "INSERT INTO tenants (id, max_concurrency, max_active_runs, max_items_per_dataset, created_at) \
         VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET max_concurrency = excluded.max_concurrency, \
         max_active_runs = excluded.max_active_runs, \
         max_items_per_dataset = excluded.max_items_per_dataset",
    )
    .bind(&t.id)
    .bind(t.max_concurrency)
    .bind(t.max_active_runs)
    .bind(t.max_items_per_dataset)
    .bind(to_ms(now()))
    .execute(&mut *tx)
    .await?;
        tx.commit().await?;
        Ok(t.clone())
    }
}
