//! Tenants as the operator manages them: creation, limits, usage, and the
//! plugins a tenant can see; on any backend.

use sqlx::{Encode, Executor, Type};

use super::{Db, Handle};
use crate::error::{StoreError, StoreResult, conflict_on_unique};
use crate::models::{Page, Paged, PluginRecord};
use crate::rows::{self, StoredRow};
use crate::rules::now;
use crate::sql;
use crate::tenancy::{SHARED_TENANT, TenantInfo, TenantLimits, TenantUsage, valid_tenant_name};

pub(crate) async fn create<DB, S>(s: &S, id: &str, l: &TenantLimits) -> StoreResult<TenantInfo>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
{
    if !valid_tenant_name(id) {
        return Err(StoreError::validation(
            "tenant",
            "must be 1 to 64 characters of A-Z, a-z, 0-9, `.`, `_` or `-`",
        ));
    }
    let at = now();
    let mut tx = s.begin_write().await?;
    sqlx::query(sql::tenancy::INSERT)
        .bind(id)
        .bind(l.items_in_flight)
        .bind(l.active_runs)
        .bind(l.queued_runs)
        .bind(l.datasets)
        .bind(l.items_per_dataset)
        .bind(l.stored_bytes)
        .bind(l.plugins)
        .bind(l.plugin_bytes)
        .bind(DB::time(at))
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_on_unique(e, || format!("tenant {id} already exists")))?;
    tx.commit().await?;
    Ok(TenantInfo {
        id: id.to_string(),
        limits: *l,
        created_at: at,
    })
}

pub(crate) async fn list<DB, S>(s: &S) -> StoreResult<Vec<TenantInfo>>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
{
    let rows = sqlx::query(sql::tenancy::LIST)
        .bind(SHARED_TENANT)
        .fetch_all(s.reads())
        .await?;
    rows.iter().map(rows::tenant_info).collect()
}

pub(crate) async fn limits<DB, S>(s: &S, id: &str) -> StoreResult<TenantLimits>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
{
    let row = sqlx::query(sql::tenancy::GET)
        .bind(id)
        .fetch_optional(s.reads())
        .await?
        .ok_or_else(|| StoreError::not_found("Tenant", id))?;
    rows::tenant_limits(&row)
}

pub(crate) async fn set_limits<DB, S>(
    s: &S,
    id: &str,
    l: &TenantLimits,
) -> StoreResult<TenantLimits>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
{
    let mut tx = s.begin_write().await?;
    let done = sqlx::query(sql::tenancy::SET_LIMITS)
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
        .execute(&mut *tx)
        .await?;
    if DB::rows_affected(&done) == 0 {
        return Err(StoreError::not_found("Tenant", id));
    }
    tx.commit().await?;
    Ok(*l)
}

pub(crate) async fn usage<DB, S>(s: &S, id: &str) -> StoreResult<TenantUsage>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
{
    let row = sqlx::query(sql::tenancy::USAGE)
        .bind(id)
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

pub(crate) async fn visible_plugins<DB, S>(
    s: &S,
    tenant: &str,
    page: Page,
) -> StoreResult<Paged<PluginRecord>>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
{
    let total = sqlx::query(sql::tenancy::COUNT_VISIBLE_PLUGINS)
        .bind(tenant)
        .bind(SHARED_TENANT)
        .fetch_one(s.reads())
        .await?
        .int_at(0)?;
    let rows = sqlx::query(sql::tenancy::LIST_VISIBLE_PLUGINS)
        .bind(tenant)
        .bind(SHARED_TENANT)
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(s.reads())
        .await?;
    let items = rows.iter().map(rows::plugin).collect::<StoreResult<_>>()?;
    Ok(page.wrap(items, total))
}
