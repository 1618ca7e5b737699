//! Registered plugins and their component bytes (PostgreSQL).

use super::PostgresStore;
use super::rows::{self, plugin_cols};
use crate::error::{StoreError, StoreResult};
use crate::models::*;
use crate::rules::{check_plugin_kind, now};

pub async fn register_plugin(
    s: &PostgresStore,
    tenant: &str,
    record: PluginRecord,
    bytes: Vec<u8>,
) -> StoreResult<PluginRecord> {
    check_plugin_kind(&record.kind)?;
    let rec = PluginRecord {
        tenant_id: tenant.to_string(),
        size: bytes.len() as i64,
        created_at: now(),
        ..record
    };
    let mut tx = s.tx().await?;
    super::tenants::require(&mut *tx, tenant).await?;
    sqlx::query(
        "INSERT INTO plugins (tenant_id, id, kind, name, description, digest, contract_version, \
         size, bytes, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (tenant_id, id) DO UPDATE SET kind = excluded.kind, name = excluded.name, \
         description = excluded.description, digest = excluded.digest, \
         contract_version = excluded.contract_version, size = excluded.size, \
         bytes = excluded.bytes, created_at = excluded.created_at",
    )
    .bind(tenant)
    .bind(&rec.id)
    .bind(&rec.kind)
    .bind(&rec.name)
    .bind(&rec.description)
    .bind(&rec.digest)
    .bind(&rec.contract_version)
    .bind(rec.size)
    .bind(&bytes)
    .bind(rec.created_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rec)
}

pub async fn get_plugin(s: &PostgresStore, tenant: &str, id: &str) -> StoreResult<PluginRecord> {
    let row = sqlx::query(concat!(
        "SELECT ",
        plugin_cols!(),
        " FROM plugins WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(&s.pool)
    .await?
    .ok_or_else(|| StoreError::not_found("Plugin", id))?;
    rows::plugin(&row)
}

pub async fn plugin_bytes(s: &PostgresStore, tenant: &str, id: &str) -> StoreResult<Vec<u8>> {
    sqlx::query_scalar("SELECT bytes FROM plugins WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .fetch_optional(&s.pool)
        .await?
        .ok_or_else(|| StoreError::not_found("Plugin", id))
}

pub async fn list_plugins(
    s: &PostgresStore,
    tenant: &str,
    page: Page,
) -> StoreResult<Paged<PluginRecord>> {
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM plugins WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_one(&s.pool)
        .await?;
    let rows = sqlx::query(concat!(
        "SELECT ",
        plugin_cols!(),
        " FROM plugins WHERE tenant_id = $1 ORDER BY id LIMIT $2 OFFSET $3"
    ))
    .bind(tenant)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(&s.pool)
    .await?;
    let items = rows.iter().map(rows::plugin).collect::<StoreResult<_>>()?;
    Ok(page.wrap(items, total))
}

pub async fn delete_plugin(s: &PostgresStore, tenant: &str, id: &str) -> StoreResult<()> {
    let mut tx = s.tx().await?;
    let n = sqlx::query("DELETE FROM plugins WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    if n == 0 {
        return Err(StoreError::not_found("Plugin", id));
    }
    Ok(())
}
