//! Runs, on any backend: creating, reading, listing, deleting, failing,
//! and the final counts of a run.
//!
//! Claims, leases and cancellation stay per backend: they use the
//! database's own locking (`FOR UPDATE SKIP LOCKED` vs `BEGIN IMMEDIATE`)
//! and lease clock (the database's `now()` vs this machine's).

use sqlx::{Executor, QueryBuilder};

use super::datasets::{Lock, fetch_locked as fetch_dataset_locked};
use super::tenancy::Admission;
use super::{Arg, Db, Handle, PushArg};
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
{
    let row = sqlx::query(sql)
        .arg(id)
        .arg(tenant)
        .fetch_optional(ex)
        .await?
        .ok_or_else(|| StoreError::not_found("Run", id))?;
    rows::run(&row)
}

/// Sets the final status and exact counts of a run, recounted from its
/// results, and clears its lease (inside a transaction that holds the run).
pub(crate) async fn finalize<DB: Db>(
    tx: &mut DB::Connection,
    run_id: &str,
    status: RunStatus,
    error: Option<&str>,
) -> StoreResult<Run> {
    let counts = sqlx::query(sql::runs::COUNT_RESULTS)
        .arg(run_id)
        .fetch_one(DB::conn(&mut *tx))
        .await?;
    let (done, failed) = (counts.int_at(0)?, counts.int_at(1)?);
    let row = sqlx::query(sql::runs::FINALIZE)
        .arg(status.as_str())
        .arg(error)
        .arg(done - failed)
        .arg(failed)
        .arg(done)
        .arg(DB::time(now()))
        .arg(run_id)
        .fetch_one(DB::conn(&mut *tx))
        .await?;
    rows::run(&row)
}

pub(crate) async fn create<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    new: NewRun,
) -> StoreResult<Run> {
    if new.total_items < 0 {
        return Err(StoreError::validation("totalItems", "must not be negative"));
    }
    if new.repeats < 1 {
        return Err(StoreError::validation("repeats", "must be at least 1"));
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
        repeats: new.repeats,
        succeeded_count: 0,
        failed_count: 0,
        skipped_count: 0,
        config: new.config,
        error: None,
        cancel_requested: false,
        takeovers: 0,
        claim_number: 0,
        exclusive: false,
        parent_run_id: new.parent_run_id,
        started_at: None,
        completed_at: None,
        created_at: at,
        updated_at: at,
    };
    let scorer_ids = serde_json::Value::from(run.scorer_ids.clone());
    let mut tx = s.begin_write().await?;
    super::tenancy::admit::<DB>(&mut tx, tenant, Admission::Run).await?;
    // A concurrent delete of the dataset waits for this transaction (or it
    // is seen gone).
    let ds = fetch_dataset_locked(DB::conn(&mut tx), tenant, &run.dataset_id, Lock::Share).await?;
    check_version(&ds, run.dataset_version)?;
    if let Some(parent_id) = &run.parent_run_id {
        // Held until the insert commits, so a concurrent delete of the
        // parent waits and then sees this run (and refuses).
        let parent = lock(DB::conn(&mut tx), tenant, parent_id).await?;
        if !parent.status.is_terminal() {
            return Err(StoreError::Conflict(format!(
                "run {parent_id} is {}; only a finished run can be re-scored",
                parent.status
            )));
        }
        if parent.dataset_id != run.dataset_id || parent.dataset_version != run.dataset_version {
            return Err(StoreError::validation(
                "parentRunId",
                format!(
                    "run {parent_id} is of dataset {} v{}, not {} v{}",
                    parent.dataset_id, parent.dataset_version, run.dataset_id, run.dataset_version
                ),
            ));
        }
        // A re-scoring run grades every stored trial of its parent.
        if parent.repeats != run.repeats {
            return Err(StoreError::validation(
                "repeats",
                format!(
                    "run {parent_id} has {} trials per item, not {}",
                    parent.repeats, run.repeats
                ),
            ));
        }
    }
    sqlx::query(sql::runs::INSERT)
        .arg(run.id.as_str())
        .arg(tenant)
        .arg(run.dataset_id.as_str())
        .arg(run.dataset_version)
        .arg(run.target_type.as_str())
        .arg(run.target_id.as_str())
        .arg(DB::json(&scorer_ids))
        .arg(run.total_items)
        .arg(DB::json(&run.config))
        .arg(DB::time(at))
        .arg(run.parent_run_id.as_deref())
        .arg(run.repeats)
        .execute(DB::conn(&mut tx))
        .await
        .map_err(|e| conflict_on_unique(e, || format!("a run with id {} exists", run.id)))?;
    tx.commit().await?;
    Ok(run)
}

pub(crate) async fn list<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    dataset_id: Option<&str>,
    page: Page,
) -> StoreResult<Paged<Run>> {
    if let Some(ds) = dataset_id {
        super::datasets::fetch(s.reads(), tenant, ds).await?;
    }
    let filter = |qb: &mut QueryBuilder<DB>| {
        qb.push(" FROM runs WHERE tenant_id = ").push_arg(tenant);
        if let Some(ds) = dataset_id {
            qb.push(" AND dataset_id = ").push_arg(ds);
        }
    };
    let mut count = QueryBuilder::<DB>::new("SELECT COUNT(*)");
    filter(&mut count);
    let total = count.build().fetch_one(s.reads()).await?.int_at(0)?;
    let mut qb = QueryBuilder::<DB>::new(concat!("SELECT ", run_cols!()));
    filter(&mut qb);
    qb.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_arg(page.limit())
        .push(" OFFSET ")
        .push_arg(page.offset());
    let rows = qb.build().fetch_all(s.reads()).await?;
    let items = rows.iter().map(rows::run).collect::<StoreResult<_>>()?;
    Ok(page.wrap(items, total))
}

pub(crate) async fn delete<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    id: &str,
) -> StoreResult<()> {
    let mut tx = s.begin_write().await?;
    let run = lock(DB::conn(&mut tx), tenant, id).await?;
    if run.status == RunStatus::Running {
        return Err(StoreError::Conflict(format!(
            "run {id} is running; cancel it first"
        )));
    }
    // A re-scoring run reads this run's outputs until it ends.
    let children = sqlx::query(sql::runs::UNFINISHED_CHILDREN)
        .arg(id)
        .fetch_one(DB::conn(&mut tx))
        .await?
        .int_at(0)?;
    if children > 0 {
        return Err(StoreError::Conflict(format!(
            "run {id} is being re-scored by {children} unfinished run(s); cancel them or wait for them to end"
        )));
    }
    sqlx::query(sql::runs::DELETE)
        .arg(id)
        .execute(DB::conn(&mut tx))
        .await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn fail<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    run_id: &str,
    error: &str,
) -> StoreResult<Run> {
    let mut tx = s.begin_write().await?;
    let run = lock(DB::conn(&mut tx), tenant, run_id).await?;
    if run.status.is_terminal() {
        return Err(run_finished(run_id, run.status));
    }
    let run = finalize::<DB>(&mut tx, run_id, RunStatus::Failed, Some(error)).await?;
    tx.commit().await?;
    Ok(run)
}
