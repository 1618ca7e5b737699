//! Tenants as the operator manages them: creation, limits, usage, and the
//! plugins a tenant can see (PostgreSQL).

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PostgresStore;
use crate::error::{StoreError, StoreResult, conflict_on_unique};
use crate::models::{Page, Paged, PluginRecord};
use crate::rows::{self, plugin_cols};
use crate::rules::now;
use crate::tenancy::{
    SHARED_TENANT, TenancyStore, TenantInfo, TenantLimits, TenantUsage, valid_tenant_name,
};

macro_rules! limit_cols {
    () => {
        "id, max_concurrency, max_active_runs, max_queued_runs, max_datasets, \
         max_items_per_dataset, max_stored_bytes, max_plugins, max_plugin_bytes, created_at"
    };
}

fn limits(r: &PgRow) -> StoreResult<TenantLimits> {
    Ok(TenantLimits {
        items_in_flight: r.try_get("max_concurrency")?,
        active_runs: r.try_get("max_active_runs")?,
        queued_runs: r.try_get("max_queued_runs")?,
        datasets: r.try_get("max_datasets")?,
        items_per_dataset: r.try_get("max_items_per_dataset")?,
        stored_bytes: r.try_get("max_stored_bytes")?,
        plugins: r.try_get("max_plugins")?,
        plugin_bytes: r.try_get("max_plugin_bytes")?,
    })
}

fn info(r: &PgRow) -> StoreResult<TenantInfo> {
    Ok(TenantInfo {
        id: r.try_get("id")?,
        limits: limits(r)?,
        created_at: r.try_get("created_at")?,
    })
}

#[async_trait]
impl TenancyStore for PostgresStore {
    async fn create_tenant(&self, id: &str, l: &TenantLimits) -> StoreResult<TenantInfo> {
        if !valid_tenant_name(id) {
            return Err(StoreError::validation(
                "tenant",
                "must be 1 to 64 characters of A-Z, a-z, 0-9, `.`, `_` or `-`",
            ));
        }
        let at = now();
        sqlx::query(
            "INSERT INTO tenants (id, max_concurrency, max_active_runs, max_queued_runs, \
             max_datasets, max_items_per_dataset, max_stored_bytes, max_plugins, \
             max_plugin_bytes, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(id)
        .bind(l.items_in_flight)
        .bind(l.active_runs)
        .bind(l.queued_runs)
        .bind(l.datasets)
        .bind(l.items_per_dataset)
        .bind(l.stored_bytes)
        .bind(l.plugins)
        .bind(l.plugin_bytes)
        .bind(at)
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_on_unique(e, || format!("tenant {id} already exists")))?;
        Ok(TenantInfo {
            id: id.to_string(),
            limits: *l,
            created_at: at,
        })
    }

    async fn list_tenants(&self) -> StoreResult<Vec<TenantInfo>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            limit_cols!(),
            " FROM tenants WHERE id <> $1 ORDER BY id"
        ))
        .bind(SHARED_TENANT)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(info).collect()
    }

    async fn tenant_limits(&self, id: &str) -> StoreResult<TenantLimits> {
        let row = sqlx::query(concat!(
            "SELECT ",
            limit_cols!(),
            " FROM tenants WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::not_found("Tenant", id))?;
        limits(&row)
    }

    async fn set_tenant_limits(&self, id: &str, l: &TenantLimits) -> StoreResult<TenantLimits> {
        let n = sqlx::query(
            "UPDATE tenants SET max_concurrency = $1, max_active_runs = $2, max_queued_runs = $3, \
             max_datasets = $4, max_items_per_dataset = $5, max_stored_bytes = $6, \
             max_plugins = $7, max_plugin_bytes = $8 WHERE id = $9 AND id <> $10",
        )
        .bind(l.items_in_flight)
        .bind(l.active_runs)
        .bind(l.queued_runs)
        .bind(l.datasets)
        .bind(l.items_per_dataset)
        .bind(l.stored_bytes)
        .bind(l.plugins)
        .bind(l.plugin_bytes)
        .bind(id)
        .bind(SHARED_TENANT)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::not_found("Tenant", id));
        }
        Ok(*l)
    }

    async fn tenant_usage(&self, id: &str) -> StoreResult<TenantUsage> {
        let row = sqlx::query(
            "SELECT \
             (SELECT COUNT(*) FROM datasets WHERE tenant_id = $1) AS datasets, \
             (SELECT COALESCE(SUM(stored_bytes), 0)::BIGINT FROM datasets WHERE tenant_id = $1) AS stored, \
             (SELECT COUNT(*) FROM plugins WHERE tenant_id = $1) AS plugins, \
             (SELECT COALESCE(SUM(size), 0)::BIGINT FROM plugins WHERE tenant_id = $1) AS plugin_bytes, \
             (SELECT COUNT(*) FROM runs WHERE tenant_id = $1 AND status = 'running') AS active, \
             (SELECT COUNT(*) FROM runs WHERE tenant_id = $1 AND status = 'pending') AS queued",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        Ok(TenantUsage {
            datasets: row.try_get("datasets")?,
            stored_bytes: row.try_get("stored")?,
            plugins: row.try_get("plugins")?,
            plugin_bytes: row.try_get("plugin_bytes")?,
            active_runs: row.try_get("active")?,
            queued_runs: row.try_get("queued")?,
        })
    }

    async fn list_visible_plugins(
        &self,
        tenant: &str,
        page: Page,
    ) -> StoreResult<Paged<PluginRecord>> {
        // A tenant's own plugin hides a shared one with the same id.
        macro_rules! visible {
            () => {
                "FROM plugins p WHERE p.tenant_id = $1 OR (p.tenant_id = $2 \
             AND NOT EXISTS (SELECT 1 FROM plugins o WHERE o.tenant_id = $1 AND o.id = p.id))"
            };
        }
        let total: i64 = sqlx::query_scalar(concat!("SELECT COUNT(*) ", visible!()))
            .bind(tenant)
            .bind(SHARED_TENANT)
            .fetch_one(&self.pool)
            .await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            plugin_cols!(),
            " ",
            visible!(),
            " ORDER BY p.id LIMIT $3 OFFSET $4"
        ))
        .bind(tenant)
        .bind(SHARED_TENANT)
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(&self.pool)
        .await?;
        let items = rows.iter().map(rows::plugin).collect::<StoreResult<_>>()?;
        Ok(page.wrap(items, total))
    }
}
