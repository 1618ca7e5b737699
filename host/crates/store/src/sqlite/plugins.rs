//! Registered plugins and their component bytes (SQLite).

use super::SqliteStore;
use super::rows::{self, plugin_cols};
use crate::error::{StoreError, StoreResult};
use crate::models::*;
use crate::rules::{check_plugin_kind, now, to_ms};

pub async fn register_plugin(
    s: &SqliteStore,
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
    let mut tx = s.write_tx().await?;
    super::tenants::require(&mut *tx, tenant).await?;
    sqlx::query(
        "INSERT INTO plugins (tenant_id, id, kind, name, description, digest, contract_version, \
         size, bytes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
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
    .bind(to_ms(rec.created_at))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rec)
}

pub async fn get_plugin(s: &SqliteStore, tenant: &str, id: &str) -> StoreResult<PluginRecord> {
    let row = sqlx::query(concat!(
        "SELECT ",
        plugin_cols!(),
        " FROM plugins WHERE tenant_id = ? AND id = ?"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(&s.reader)
    .await?
    .ok_or_else(|| StoreError::not_found("Plugin", id))?;
    rows::plugin(&row)
}

pub async fn plugin_bytes(s: &SqliteStore, tenant: &str, id: &str) -> StoreResult<Vec<u8>> {
    sqlx::query_scalar("SELECT bytes FROM plugins WHERE tenant_id = ? AND id = ?")
        .bind(tenant)
        .bind(id)
        .fetch_optional(&s.reader)
        .await?
        .ok_or_else(|| StoreError::not_found("Plugin", id))
}

pub async fn list_plugins(
    s: &SqliteStore,
    tenant: &str,
    page: Page,
) -> StoreResult<Paged<PluginRecord>> {
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM plugins WHERE tenant_id = ?")
        .bind(tenant)
        .fetch_one(&s.reader)
        .await?;
    let rows = sqlx::query(concat!(
        "SELECT ",
        plugin_cols!(),
        " FROM plugins WHERE tenant_id = ? ORDER BY id LIMIT ? OFFSET ?"
    ))
    .bind(tenant)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(&s.reader)
    .await?;
    let items = rows.iter().map(rows::plugin).collect::<StoreResult<_>>()?;
    Ok(page.wrap(items, total))
}

pub async fn delete_plugin(s: &SqliteStore, tenant: &str, id: &str) -> StoreResult<()> {
    let mut tx = s.write_tx().await?;
    let n = sqlx::query("DELETE FROM plugins WHERE tenant_id = ? AND id = ?")
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
