//! Network grants, on any backend.

use super::{Arg, Db, Handle};
use crate::error::{StoreError, StoreResult};
use crate::network::PluginGrant;
use crate::rows::StoredRow;
use crate::rules::now;
use crate::sql;

fn grant(r: &impl StoredRow) -> StoreResult<PluginGrant> {
    Ok(PluginGrant {
        tenant_id: r.text("tenant_id")?,
        plugin_id: r.text("plugin_id")?,
        grant_json: r.text("grant_json")?,
        granted_by: r.text("granted_by")?,
        updated_at: r.time("updated_at")?,
    })
}

pub(crate) async fn set<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    plugin_id: &str,
    grant_json: &str,
    granted_by: &str,
) -> StoreResult<PluginGrant> {
    let mut tx = s.begin_write().await?;
    super::tenants::require(DB::conn(&mut tx), tenant).await?;
    sqlx::query(sql::grants::PLUGIN_VISIBLE)
        .arg(tenant)
        .arg(plugin_id)
        .fetch_optional(DB::conn(&mut tx))
        .await?
        .ok_or_else(|| StoreError::not_found("Plugin", plugin_id))?;
    let record = PluginGrant {
        tenant_id: tenant.to_string(),
        plugin_id: plugin_id.to_string(),
        grant_json: grant_json.to_string(),
        granted_by: granted_by.to_string(),
        updated_at: now(),
    };
    sqlx::query(sql::grants::UPSERT)
        .arg(tenant)
        .arg(plugin_id)
        .arg(grant_json)
        .arg(granted_by)
        .arg(DB::time(record.updated_at))
        .execute(DB::conn(&mut tx))
        .await?;
    tx.commit().await?;
    Ok(record)
}

pub(crate) async fn get<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    plugin_id: &str,
) -> StoreResult<Option<PluginGrant>> {
    sqlx::query(sql::grants::GET)
        .arg(tenant)
        .arg(plugin_id)
        .fetch_optional(s.reads())
        .await?
        .as_ref()
        .map(grant)
        .transpose()
}

pub(crate) async fn delete<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    plugin_id: &str,
) -> StoreResult<()> {
    let mut tx = s.begin_write().await?;
    let done = sqlx::query(sql::grants::DELETE)
        .arg(tenant)
        .arg(plugin_id)
        .execute(DB::conn(&mut tx))
        .await?;
    if DB::rows_affected(&done) == 0 {
        return Err(StoreError::not_found("Grant", plugin_id));
    }
    tx.commit().await?;
    Ok(())
}
