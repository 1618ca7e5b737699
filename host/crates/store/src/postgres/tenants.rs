//! Tenants (PostgreSQL). Reading one is shared ([`crate::shared::tenants`]);
//! the upsert stays per backend (SQLite binds `created_at`, PostgreSQL's
//! column takes its default).

use async_trait::async_trait;

use super::PostgresStore;
use crate::error::StoreResult;
use crate::models::Tenant;
use crate::store::TenantStore;

#[async_trait]
impl TenantStore for PostgresStore {
    async fn get_tenant(&self, id: &str) -> StoreResult<Tenant> {
        crate::shared::tenants::get(self, id).await
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
