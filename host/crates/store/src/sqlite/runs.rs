//! Runs and their leases (SQLite).
//!
//! Lease expiry uses this machine's clock (milliseconds); every process
//! sharing the SQLite file runs on the same machine.

use async_trait::async_trait;

use std::time::Duration;

use sqlx::{Executor, QueryBuilder, Sqlite};

use super::SqliteStore;
use super::datasets::fetch as fetch_dataset;
use super::items::AT_VERSION;
use super::rows::to_json;
use crate::error::{StoreError, StoreResult, conflict_on_unique};
use crate::models::*;
use crate::rows::{self, item_cols, run_cols};
use crate::rules::{check_terminal, check_version, lease_ms, new_id, now, run_finished, to_ms};
use crate::sql;
use crate::store::RunStore;

/// The tenant's run `id` through any executor.
pub async fn fetch<'e, E>(ex: E, tenant: &str, id: &str) -> StoreResult<Run>
where
    E: Executor<'e, Database = Sqlite>,
{
    let row = sqlx::query(concat!(
        "SELECT ",
        run_cols!(),
        " FROM runs WHERE id = ? AND tenant_id = ?"
    ))
    .bind(id)
    .bind(tenant)
    .fetch_optional(ex)
    .await?
    .ok_or_else(|| StoreError::not_found("Run", id))?;
    rows::run(&row)
}

/// Status and lease owner of a run (any tenant).
async fn lease_state<'e, E>(
    ex: E,
    id: &str,
) -> StoreResult<(RunStatus, Option<String>, Option<i64>)>
where
    E: Executor<'e, Database = Sqlite>,
{
    let (status, owner, expires): (String, Option<String>, Option<i64>) =
        sqlx::query_as("SELECT status, lease_owner, lease_expires_at FROM runs WHERE id = ?")
            .bind(id)
            .fetch_optional(ex)
            .await?
            .ok_or_else(|| StoreError::not_found("Run", id))?;
    let status = RunStatus::parse(&status)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown run status `{status}`")))?;
    Ok((status, owner, expires))
}

/// (results, failed results) of a run, counted from the results table.
async fn count_results<'e, E>(ex: E, run_id: &str) -> StoreResult<(i64, i64)>
where
    E: Executor<'e, Database = Sqlite>,
{
    Ok(sqlx::query_as(sql::runs::COUNT_RESULTS)
        .bind(run_id)
        .fetch_one(ex)
        .await?)
}

/// Sets the final status and exact counts of a run (inside `tx`).
async fn finalize(
    tx: &mut sqlx::SqliteConnection,
    run_id: &str,
    status: RunStatus,
    error: Option<&str>,
) -> StoreResult<Run> {
    let (done, failed) = count_results(&mut *tx, run_id).await?;
    let at = to_ms(now());
    let row = sqlx::query(concat!(
        "UPDATE runs SET status = ?, error = COALESCE(?, error), succeeded_count = ?, \
         failed_count = ?, skipped_count = MAX(total_items - ?, 0), completed_at = ?, \
         lease_owner = NULL, lease_expires_at = NULL, updated_at = ? WHERE id = ? RETURNING ",
        run_cols!()
    ))
    .bind(status.as_str())
    .bind(error)
    .bind(done - failed)
    .bind(failed)
    .bind(done)
    .bind(at)
    .bind(at)
    .bind(run_id)
    .fetch_one(&mut *tx)
    .await?;
    rows::run(&row)
}

#[async_trait]
impl RunStore for SqliteStore {
    async fn create_run(&self, tenant: &str, new: NewRun) -> StoreResult<Run> {
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
        let mut tx = self.write_tx().await?;
        let ds = fetch_dataset(&mut *tx, tenant, &run.dataset_id).await?;
        check_version(&ds, run.dataset_version)?;
        sqlx::query(sql::runs::INSERT)
            .bind(&run.id)
            .bind(tenant)
            .bind(&run.dataset_id)
            .bind(run.dataset_version)
            .bind(run.target_type.as_str())
            .bind(&run.target_id)
            .bind(serde_json::to_string(&run.scorer_ids).expect("strings serialize"))
            .bind(run.total_items)
            .bind(to_json(&run.config))
            .bind(to_ms(at))
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_on_unique(e, || format!("a run with id {} exists", run.id)))?;
        tx.commit().await?;
        Ok(run)
    }

    async fn get_run(&self, tenant: &str, id: &str) -> StoreResult<Run> {
        fetch(&self.reader, tenant, id).await
    }

    async fn list_runs(
        &self,
        tenant: &str,
        dataset_id: Option<&str>,
        page: Page,
    ) -> StoreResult<Paged<Run>> {
        if let Some(ds) = dataset_id {
            fetch_dataset(&self.reader, tenant, ds).await?;
        }
        let filter = |qb: &mut QueryBuilder<Sqlite>| {
            qb.push(" FROM runs WHERE tenant_id = ")
                .push_bind(tenant.to_string());
            if let Some(ds) = dataset_id {
                qb.push(" AND dataset_id = ").push_bind(ds.to_string());
            }
        };
        let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*)");
        filter(&mut count);
        let total: i64 = count.build_query_scalar().fetch_one(&self.reader).await?;
        let mut qb = QueryBuilder::<Sqlite>::new(concat!("SELECT ", run_cols!()));
        filter(&mut qb);
        qb.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(page.limit())
            .push(" OFFSET ")
            .push_bind(page.offset());
        let rows = qb.build().fetch_all(&self.reader).await?;
        let items = rows.iter().map(rows::run).collect::<StoreResult<_>>()?;
        Ok(page.wrap(items, total))
    }

    async fn delete_run(&self, tenant: &str, id: &str) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let run = fetch(&mut *tx, tenant, id).await?;
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

    async fn request_cancel(&self, tenant: &str, id: &str) -> StoreResult<Run> {
        let mut tx = self.write_tx().await?;
        let run = fetch(&mut *tx, tenant, id).await?;
        let at = to_ms(now());
        match run.status {
            RunStatus::Pending => {
                sqlx::query(
                    "UPDATE runs SET status = 'cancelled', cancel_requested = 1, \
                 skipped_count = total_items - succeeded_count - failed_count, \
                 completed_at = ?, updated_at = ? WHERE id = ?",
                )
                .bind(at)
                .bind(at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            RunStatus::Running => {
                // Nobody holds the run (its process stopped or died): nobody
                // would ever see the request, so it is finalized right here.
                let unheld: bool = sqlx::query_scalar(
                    "SELECT lease_owner IS NULL OR lease_expires_at <= ? FROM runs WHERE id = ?",
                )
                .bind(at)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
                sqlx::query("UPDATE runs SET cancel_requested = 1, updated_at = ? WHERE id = ?")
                    .bind(at)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                if unheld {
                    let run = finalize(&mut tx, id, RunStatus::Cancelled, None).await?;
                    tx.commit().await?;
                    return Ok(run);
                }
            }
            done => return Err(run_finished(id, done)),
        }
        let run = fetch(&mut *tx, tenant, id).await?;
        tx.commit().await?;
        Ok(run)
    }

    async fn claim_next_run(
        &self,
        owner: &str,
        lease: Duration,
    ) -> StoreResult<Option<(String, Run)>> {
        let mut tx = self.write_tx().await?;
        let at = to_ms(now());
        // Interrupted runs (expired or released lease) first, then pending runs
        // of tenants below their maxActiveRuns; oldest first.
        let row = sqlx::query(concat!(
        "UPDATE runs SET status = 'running', started_at = COALESCE(started_at, ?1), \
         lease_owner = ?2, lease_expires_at = ?3, updated_at = ?1 \
         WHERE id = (SELECT r.id FROM runs r WHERE \
           (r.status = 'running' AND (r.lease_owner IS NULL OR r.lease_expires_at <= ?1)) \
           OR (r.status = 'pending' AND \
             (SELECT COUNT(*) FROM runs a WHERE a.tenant_id = r.tenant_id AND a.status = 'running') \
             < (SELECT t.max_active_runs FROM tenants t WHERE t.id = r.tenant_id)) \
           ORDER BY CASE r.status WHEN 'running' THEN 0 ELSE 1 END, r.created_at, r.id LIMIT 1) \
         RETURNING ",
        run_cols!()
    ))
    .bind(at)
    .bind(owner)
    .bind(at + lease_ms(lease))
    .fetch_optional(&mut *tx)
    .await?;
        tx.commit().await?;
        let Some(row) = row else { return Ok(None) };
        use sqlx::Row;
        let tenant: String = row.try_get("tenant_id")?;
        Ok(Some((tenant, rows::run(&row)?)))
    }

    async fn claim_run(
        &self,
        tenant: &str,
        run_id: &str,
        owner: &str,
        lease: Duration,
    ) -> StoreResult<Run> {
        let mut tx = self.write_tx().await?;
        let run = fetch(&mut *tx, tenant, run_id).await?;
        let (_, holder, expires) = lease_state(&mut *tx, run_id).await?;
        let at = to_ms(now());
        if run.status.is_terminal() {
            return Err(run_finished(run_id, run.status));
        }
        if let Some(holder) = holder
            && holder != owner
            && run.status == RunStatus::Running
            && expires.is_some_and(|e| e > at)
        {
            return Err(StoreError::Conflict(format!(
                "run {run_id} is held by another process"
            )));
        }
        let row = sqlx::query(concat!(
            "UPDATE runs SET status = 'running', started_at = COALESCE(started_at, ?1), \
         lease_owner = ?2, lease_expires_at = ?3, updated_at = ?1 WHERE id = ?4 RETURNING ",
            run_cols!()
        ))
        .bind(at)
        .bind(owner)
        .bind(at + lease_ms(lease))
        .bind(run_id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        rows::run(&row)
    }

    async fn renew_lease(
        &self,
        run_id: &str,
        owner: &str,
        lease: Duration,
    ) -> StoreResult<RunControl> {
        let mut tx = self.write_tx().await?;
        let cancel: Option<i64> = sqlx::query_scalar(
            "UPDATE runs SET lease_expires_at = ? \
         WHERE id = ? AND lease_owner = ? AND status = 'running' RETURNING cancel_requested",
        )
        .bind(to_ms(now()) + lease_ms(lease))
        .bind(run_id)
        .bind(owner)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        match cancel {
            Some(c) => Ok(RunControl {
                cancel_requested: c != 0,
            }),
            None => Err(StoreError::LeaseLost),
        }
    }

    async fn release_run(&self, run_id: &str, owner: &str) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
        "UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL WHERE id = ? AND lease_owner = ?",
    )
    .bind(run_id)
    .bind(owner)
    .execute(&mut *tx)
    .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn pending_items(
        &self,
        tenant: &str,
        run_id: &str,
        after_position: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<DatasetItem>> {
        let run = self.get_run(tenant, run_id).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM item_versions iv WHERE iv.dataset_id = ? AND iv.position > ? AND {AT_VERSION} \
         AND NOT EXISTS (SELECT 1 FROM results r WHERE r.run_id = ? AND r.item_id = iv.item_id) \
         ORDER BY iv.position LIMIT ?",
        item_cols!()
    )))
    .bind(&run.dataset_id)
    .bind(after_position.unwrap_or(-1))
    .bind(run.dataset_version)
    .bind(run.dataset_version)
    .bind(run_id)
    .bind(limit.max(0))
    .fetch_all(&self.reader)
    .await?;
        rows.iter().map(rows::item).collect()
    }

    async fn finish_run(
        &self,
        run_id: &str,
        owner: &str,
        status: RunStatus,
        error: Option<String>,
    ) -> StoreResult<Run> {
        check_terminal(status)?;
        let mut tx = self.write_tx().await?;
        let (current, holder, _) = lease_state(&mut *tx, run_id).await?;
        if current.is_terminal() {
            return Err(run_finished(run_id, current));
        }
        if holder.as_deref() != Some(owner) {
            return Err(StoreError::LeaseLost);
        }
        let run = finalize(&mut tx, run_id, status, error.as_deref()).await?;
        tx.commit().await?;
        Ok(run)
    }

    async fn fail_run(&self, tenant: &str, run_id: &str, error: &str) -> StoreResult<Run> {
        let mut tx = self.write_tx().await?;
        let run = fetch(&mut *tx, tenant, run_id).await?;
        if run.status.is_terminal() {
            return Err(run_finished(run_id, run.status));
        }
        let run = finalize(&mut tx, run_id, RunStatus::Failed, Some(error)).await?;
        tx.commit().await?;
        Ok(run)
    }
}
