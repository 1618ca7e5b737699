//! Tenants as the operator manages them: creation, limits, usage, and the
//! plugins a tenant can see; on any backend.

use super::{Arg, Db, Handle, paged};
use crate::error::{StoreError, StoreResult, conflict_on_unique};
use crate::models::{Page, Paged, PluginRecord};
use crate::rows::{self, StoredRow};
use crate::rules::now;
use crate::sql;
use crate::tenancy::{SHARED_TENANT, TenantInfo, TenantLimits, TenantUsage, valid_tenant_name};

pub(crate) async fn create<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    id: &str,
    l: &TenantLimits,
) -> StoreResult<TenantInfo> {
    l.check()?;
    if !valid_tenant_name(id) {
        return Err(StoreError::validation(
            "tenant",
            "must be 1 to 64 characters of A-Z, a-z, 0-9, `.`, `_` or `-`",
        ));
    }
    let at = now();
    let mut tx = s.begin_write().await?;
    sqlx::query(sql::tenancy::INSERT)
        .arg(id)
        .arg(l.items_in_flight)
        .arg(l.active_runs)
        .arg(l.queued_runs)
        .arg(l.datasets)
        .arg(l.items_per_dataset)
        .arg(l.stored_bytes)
        .arg(l.plugins)
        .arg(l.plugin_bytes)
        .arg(l.weight)
        .arg(DB::time(at))
        .execute(DB::conn(&mut tx))
        .await
        .map_err(|e| conflict_on_unique(e, || format!("tenant {id} already exists")))?;
    tx.commit().await?;
    Ok(TenantInfo {
        id: id.to_string(),
        limits: *l,
        created_at: at,
    })
}

pub(crate) async fn list<DB: Db, S: Handle<Db = DB>>(s: &S) -> StoreResult<Vec<TenantInfo>> {
    let rows = sqlx::query(sql::tenancy::LIST)
        .arg(SHARED_TENANT)
        .fetch_all(s.reads())
        .await?;
    rows.iter().map(rows::tenant_info).collect()
}

pub(crate) async fn limits<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    id: &str,
) -> StoreResult<TenantLimits> {
    let row = sqlx::query(sql::tenancy::GET)
        .arg(id)
        .fetch_optional(s.reads())
        .await?
        .ok_or_else(|| StoreError::not_found("Tenant", id))?;
    rows::tenant_limits(&row)
}

pub(crate) async fn set_limits<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    id: &str,
    l: &TenantLimits,
) -> StoreResult<TenantLimits> {
    l.check()?;
    let mut tx = s.begin_write().await?;
    let done = sqlx::query(sql::tenancy::SET_LIMITS)
        .arg(l.items_in_flight)
        .arg(l.active_runs)
        .arg(l.queued_runs)
        .arg(l.datasets)
        .arg(l.items_per_dataset)
        .arg(l.stored_bytes)
        .arg(l.plugins)
        .arg(l.plugin_bytes)
        .arg(l.weight)
        .arg(id)
        .arg(SHARED_TENANT)
        .execute(DB::conn(&mut tx))
        .await?;
    if DB::rows_affected(&done) == 0 {
        return Err(StoreError::not_found("Tenant", id));
    }
    tx.commit().await?;
    Ok(*l)
}

pub(crate) async fn usage<DB: Db, S: Handle<Db = DB>>(s: &S, id: &str) -> StoreResult<TenantUsage> {
    let row = sqlx::query(sql::tenancy::USAGE)
        .arg(id)
        .fetch_one(s.reads())
        .await?;
    Ok(TenantUsage {
        datasets: row.int("datasets")?,
        stored_bytes: row.int("stored")?,
        plugins: row.int("plugins")?,
        plugin_bytes: row.int("plugin_bytes")?,
        active_runs: row.int("active")?,
        queued_runs: row.int("queued")?,
    })
}

pub(crate) async fn visible_plugins<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    page: Page,
) -> StoreResult<Paged<PluginRecord>> {
    paged(
        s,
        (
            sql::tenancy::COUNT_VISIBLE_PLUGINS,
            sql::tenancy::LIST_VISIBLE_PLUGINS,
        ),
        |q| q.arg(tenant).arg(SHARED_TENANT),
        page,
        rows::plugin,
    )
    .await
}
