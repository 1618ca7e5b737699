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
        .arg(l.cache_bytes)
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
        .arg(l.cache_bytes)
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
    usage_of(&row)
}

fn usage_of(row: &impl StoredRow) -> StoreResult<TenantUsage> {
    Ok(TenantUsage {
        datasets: row.int("datasets")?,
        stored_bytes: row.int("stored")?,
        plugins: row.int("plugins")?,
        plugin_bytes: row.int("plugin_bytes")?,
        active_runs: row.int("active")?,
        queued_runs: row.int("queued")?,
        cache_bytes: row.int("cache_bytes")?,
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

/// What a write adds that tenant limits count.
pub(crate) enum Admission<'a> {
    Dataset,
    Plugin { id: &'a str, size: i64 },
    Run,
}

/// Checks `what` against tenant `id`'s limits and usage as seen inside the
/// write transaction `c`, so two concurrent writes cannot both pass a check
/// that only one of them fits (the race of checking before the write). On
/// PostgreSQL the tenant's row is locked for the rest of the transaction;
/// SQLite's single writer already serializes the writes. `NotFound` when
/// the tenant does not exist.
pub(crate) async fn admit<DB: Db>(
    c: &mut DB::Connection,
    id: &str,
    what: Admission<'_>,
) -> StoreResult<()> {
    let sql = if DB::ROW_LOCKS {
        sql::tenancy::LIMITS_FOR_ADMISSION
    } else {
        sql::tenancy::LIMITS
    };
    let row = sqlx::query(sql)
        .arg(id)
        .fetch_optional(DB::conn(c))
        .await?
        .ok_or_else(|| StoreError::not_found("Tenant", id))?;
    let limits = rows::tenant_limits(&row)?;
    let row = sqlx::query(sql::tenancy::USAGE)
        .arg(id)
        .fetch_one(DB::conn(c))
        .await?;
    let usage = usage_of(&row)?;
    match what {
        Admission::Dataset => crate::tenancy::admit_dataset(&limits, &usage),
        Admission::Run => crate::tenancy::admit_run(&limits, &usage),
        Admission::Plugin { id: plugin, size } => {
            let replaces = sqlx::query(sql::tenancy::PLUGIN_SIZE)
                .arg(id)
                .arg(plugin)
                .fetch_optional(DB::conn(c))
                .await?
                .map(|r| r.int_at(0))
                .transpose()?;
            crate::tenancy::admit_plugin(&limits, &usage, size, replaces)
        }
    }
}
