//! Runs, on any backend: creating, reading, listing, deleting, failing,
//! and the final counts of a run.
//!
//! Claims, leases and cancellation stay per backend: they use the
//! database's own locking (`FOR UPDATE SKIP LOCKED` vs `BEGIN IMMEDIATE`)
//! and lease clock (the database's `now()` vs this machine's).

use sqlx::{Encode, Executor, QueryBuilder, Type};

use super::datasets::{Lock, fetch_locked as fetch_dataset_locked};
use super::{Db, Handle};
use crate::error::{StoreError, StoreResult, conflict_on_unique};
use crate::models::*;
use crate::rows::{self, StoredRow, run_cols};
use crate::rules::{check_version, new_id, now, run_finished};
use crate::sql;

/// The tenant's run `id` through any executor.
pub(crate) async fn fetch<'e, DB, E>(ex: E, tenant: &str, id: &str) -> StoreResult<Run>
where
    DB: Db,
    E: Executor<'e, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
{
    fetch_with(ex, sql::runs::GET, tenant, id).await
}

/// Like [`fetch`], locking the row until the transaction ends where rows
/// are locked (PostgreSQL; SQLite's write transaction excludes every other
/// writer anyway).
pub(crate) async fn lock<'e, DB, E>(ex: E, tenant: &str, id: &str) -> StoreResult<Run>
where
    DB: Db,
    E: Executor<'e, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
{
    let sql = if DB::ROW_LOCKS {
        sql::runs::GET_FOR_UPDATE
    } else {
        sql::runs::GET
    };
    fetch_with(ex, sql, tenant, id).await
}

async fn fetch_with<'e, DB, E>(ex: E, sql: &'static str, tenant: &str, id: &str) -> StoreResult<Run>
where
    DB: Db,
    E: Executor<'e, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
{
    let row = sqlx::query(sql)
        .bind(id)
        .bind(tenant)
        .fetch_optional(ex)
        .await?
        .ok_or_else(|| StoreError::not_found("Run", id))?;
    rows::run(&row)
}

/// Sets the final status and exact counts of a run, recounted from its
/// results, and clears its lease (inside a transaction that holds the run).
pub(crate) async fn finalize<DB>(
    tx: &mut DB::Connection,
    run_id: &str,
    status: RunStatus,
    error: Option<&str>,
) -> StoreResult<Run>
where
    DB: Db,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    for<'t> Option<&'t str>: Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
{
    let counts = sqlx::query(sql::runs::COUNT_RESULTS)
        .bind(run_id)
        .fetch_one(&mut *tx)
        .await?;
    let (done, failed) = (counts.int_at(0)?, counts.int_at(1)?);
    let row = sqlx::query(sql::runs::FINALIZE)
        .bind(status.as_str())
        .bind(error)
        .bind(done - failed)
        .bind(failed)
        .bind(done)
        .bind(DB::time(now()))
        .bind(run_id)
        .fetch_one(&mut *tx)
        .await?;
    rows::run(&row)
}

pub(crate) async fn create<DB, S>(s: &S, tenant: &str, new: NewRun) -> StoreResult<Run>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
{
    if new.total_items < 0 {
        return Err(StoreError::validation("totalItems", "must not be negative"));
    }
    let at = now();
    let run = Run {
        id: new.id.unwrap_or_else(new_id),
        dataset_id: new.dataset_id,
        dataset_version: new.dataset_version,
        target_type: new.target_type,
        target_id: new.target_id,
        scorer_ids: new.scorer_ids,
        status: RunStatus::Pending,
        total_items: new.total_items,
        succeeded_count: 0,
        failed_count: 0,
        skipped_count: 0,
        config: new.config,
        error: None,
        cancel_requested: false,
        started_at: None,
        completed_at: None,
        created_at: at,
        updated_at: at,
    };
    let scorer_ids = serde_json::Value::from(run.scorer_ids.clone());
    let mut tx = s.begin_write().await?;
    // A concurrent delete of the dataset waits for this transaction (or it
    // is seen gone).
    let ds = fetch_dataset_locked(&mut *tx, tenant, &run.dataset_id, Lock::Share).await?;
    check_version(&ds, run.dataset_version)?;
    sqlx::query(sql::runs::INSERT)
        .bind(run.id.as_str())
        .bind(tenant)
        .bind(run.dataset_id.as_str())
        .bind(run.dataset_version)
        .bind(run.target_type.as_str())
        .bind(run.target_id.as_str())
        .bind(DB::json(&scorer_ids))
        .bind(run.total_items)
        .bind(DB::json(&run.config))
        .bind(DB::time(at))
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_on_unique(e, || format!("a run with id {} exists", run.id)))?;
    tx.commit().await?;
    Ok(run)
}

pub(crate) async fn list<DB, S>(
    s: &S,
    tenant: &str,
    dataset_id: Option<&str>,
    page: Page,
) -> StoreResult<Paged<Run>>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
{
    if let Some(ds) = dataset_id {
        super::datasets::fetch(s.reads(), tenant, ds).await?;
    }
    let filter = |qb: &mut QueryBuilder<DB>| {
        qb.push(" FROM runs WHERE tenant_id = ").push_bind(tenant);
        if let Some(ds) = dataset_id {
            qb.push(" AND dataset_id = ").push_bind(ds);
        }
    };
    let mut count = QueryBuilder::<DB>::new("SELECT COUNT(*)");
    filter(&mut count);
    let total = count.build().fetch_one(s.reads()).await?.int_at(0)?;
    let mut qb = QueryBuilder::<DB>::new(concat!("SELECT ", run_cols!()));
    filter(&mut qb);
    qb.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(page.limit())
        .push(" OFFSET ")
        .push_bind(page.offset());
    let rows = qb.build().fetch_all(s.reads()).await?;
    let items = rows.iter().map(rows::run).collect::<StoreResult<_>>()?;
    Ok(page.wrap(items, total))
}

pub(crate) async fn delete<DB, S>(s: &S, tenant: &str, id: &str) -> StoreResult<()>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
{
    let mut tx = s.begin_write().await?;
    let run = lock(&mut *tx, tenant, id).await?;
    if run.status == RunStatus::Running {
        return Err(StoreError::Conflict(format!(
            "run {id} is running; cancel it first"
        )));
    }
    sqlx::query(sql::runs::DELETE)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn fail<DB, S>(s: &S, tenant: &str, run_id: &str, error: &str) -> StoreResult<Run>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    for<'t> Option<&'t str>: Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
{
    let mut tx = s.begin_write().await?;
    let run = lock(&mut *tx, tenant, run_id).await?;
    if run.status.is_terminal() {
        return Err(run_finished(run_id, run.status));
    }
    let run = finalize(&mut *tx, run_id, RunStatus::Failed, Some(error)).await?;
    tx.commit().await?;
    Ok(run)
}
