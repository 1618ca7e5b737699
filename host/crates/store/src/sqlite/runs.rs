//! Runs and their leases (SQLite).
//!
//! Creating, reading, listing, deleting and failing runs is the shared code
//! in [`crate::shared::runs`]. Claims, leases, cancellation and the pending
//! items stay here. Lease expiry uses this machine's clock (milliseconds);
//! every process sharing the SQLite file runs on the same machine.

use async_trait::async_trait;

use std::time::Duration;

use sqlx::{Executor, Sqlite};

use super::SqliteStore;
use super::items::AT_VERSION;
use super::{chunks, claim};
use crate::error::{StoreError, StoreResult};
use crate::models::*;
use crate::rows::{self, item_cols, run_cols};
use crate::rules::ClaimScope;
use crate::rules::{check_terminal, lease_ms, now, run_finished, to_ms};
use crate::shared::runs::{self as shared, fetch};
use crate::store::RunStore;

/// Status, lease owner and expiry, and claim number of a run (any tenant).
async fn lease_state<'e, E>(
    ex: E,
    id: &str,
) -> StoreResult<(RunStatus, Option<String>, Option<i64>, i64)>
where
    E: Executor<'e, Database = Sqlite>,
{
    let (status, owner, expires, claim): (String, Option<String>, Option<i64>, i64) =
        sqlx::query_as(
            "SELECT status, lease_owner, lease_expires_at, lease_claim FROM runs WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(ex)
        .await?
        .ok_or_else(|| StoreError::not_found("Run", id))?;
    let status = RunStatus::parse(&status)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown run status `{status}`")))?;
    Ok((status, owner, expires, claim))
}

/// Ends a run inside `tx` (see [`shared::finalize`]).
async fn finalize(
    tx: &mut sqlx::SqliteConnection,
    run_id: &str,
    status: RunStatus,
    error: Option<&str>,
) -> StoreResult<Run> {
    shared::finalize::<Sqlite>(tx, run_id, status, error).await
}

#[async_trait]
impl RunStore for SqliteStore {
    async fn create_run(&self, tenant: &str, new: NewRun) -> StoreResult<Run> {
        shared::create(self, tenant, new).await
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
        shared::list(self, tenant, dataset_id, page).await
    }

    async fn delete_run(&self, tenant: &str, id: &str) -> StoreResult<()> {
        shared::delete(self, tenant, id).await
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
        executing: &[String],
    ) -> StoreResult<Option<(String, Run)>> {
        claim::claim_next_run(self, owner, lease, ClaimScope::AnyTenant, executing).await
    }

    async fn claim_next_run_of_idle_tenant(
        &self,
        owner: &str,
        lease: Duration,
        executing: &[String],
    ) -> StoreResult<Option<(String, Run)>> {
        claim::claim_next_run(self, owner, lease, ClaimScope::IdleTenants, executing).await
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
        let (_, holder, expires, _) = lease_state(&mut *tx, run_id).await?;
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
         takeovers = takeovers + CASE WHEN status = 'running' AND lease_owner IS NOT NULL AND lease_owner <> ?2 THEN 1 ELSE 0 END, \
         lease_owner = ?2, lease_expires_at = ?3, updated_at = ?1, claim_number = claim_number + 1, lease_claim = claim_number + 1 \
         WHERE id = ?4 RETURNING ",
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
        claim: &Claim,
        lease: Duration,
    ) -> StoreResult<RunControl> {
        let mut tx = self.write_tx().await?;
        let cancel: Option<i64> = sqlx::query_scalar(
            "UPDATE runs SET lease_expires_at = ? \
         WHERE id = ? AND lease_owner = ? AND lease_claim = ? AND status = 'running' \
         RETURNING cancel_requested",
        )
        .bind(to_ms(now()) + lease_ms(lease))
        .bind(run_id)
        .bind(&claim.owner)
        .bind(claim.number)
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

    async fn release_run(&self, run_id: &str, claim: &Claim) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL \
         WHERE id = ? AND lease_owner = ? AND lease_claim = ?",
        )
        .bind(run_id)
        .bind(&claim.owner)
        .bind(claim.number)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn run_to_help(
        &self,
        owner: &str,
        executing: &[String],
    ) -> StoreResult<Option<(String, Run)>> {
        chunks::run_to_help(self, owner, executing).await
    }

    async fn join_run(&self, tenant: &str, run_id: &str, owner: &str) -> StoreResult<Claim> {
        chunks::join_run(self, tenant, run_id, owner).await
    }

    async fn set_run_exclusive(
        &self,
        run_id: &str,
        claim: &Claim,
        exclusive: bool,
    ) -> StoreResult<()> {
        chunks::set_run_exclusive(self, run_id, claim, exclusive).await
    }

    async fn claim_chunk(
        &self,
        run_id: &str,
        claim: &Claim,
        size: i64,
        lease: Duration,
    ) -> StoreResult<ChunkGrant> {
        chunks::claim_chunk(self, run_id, claim, size, lease).await
    }

    async fn finish_chunk(
        &self,
        run_id: &str,
        claim: &Claim,
        first: i64,
    ) -> StoreResult<ChunkDone> {
        chunks::finish_chunk(self, run_id, claim, first).await
    }

    async fn renew_chunks(
        &self,
        run_id: &str,
        claim: &Claim,
        lease: Duration,
    ) -> StoreResult<RunControl> {
        chunks::renew_chunks(self, run_id, claim, lease).await
    }

    async fn release_chunks(&self, run_id: &str, claim: &Claim) -> StoreResult<()> {
        chunks::release_chunks(self, run_id, claim).await
    }

    async fn pending_items_in(
        &self,
        tenant: &str,
        run_id: &str,
        after_position: Option<i64>,
        end_position: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<DatasetItem>> {
        let run = self.get_run(tenant, run_id).await?;
        // With repeats, an item is pending until each of its trials has a
        // result (a count over the (run, item, trial) key's index).
        let missing = if run.repeats > 1 {
            "(SELECT COUNT(*) FROM results r WHERE r.run_id = ? AND r.item_id = iv.item_id) < ?"
        } else {
            "NOT EXISTS (SELECT 1 FROM results r WHERE r.run_id = ? AND r.item_id = iv.item_id)"
        };
        let sql = format!(
            "SELECT {} FROM item_versions iv WHERE iv.dataset_id = ? AND iv.position > ? AND iv.position < ? \
             AND {AT_VERSION} AND {missing} ORDER BY iv.position LIMIT ?",
            item_cols!()
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&run.dataset_id)
            .bind(after_position.unwrap_or(-1))
            .bind(end_position.unwrap_or(i64::MAX))
            .bind(run.dataset_version)
            .bind(run.dataset_version)
            .bind(run_id);
        let query = if run.repeats > 1 {
            query.bind(run.repeats)
        } else {
            query
        };
        let rows = query.bind(limit.max(0)).fetch_all(&self.reader).await?;
        rows.iter().map(rows::item).collect()
    }

    async fn finish_run(
        &self,
        run_id: &str,
        claim: &Claim,
        status: RunStatus,
        error: Option<String>,
    ) -> StoreResult<Run> {
        check_terminal(status)?;
        let mut tx = self.write_tx().await?;
        let (current, holder, _, number) = lease_state(&mut *tx, run_id).await?;
        if current.is_terminal() {
            return Err(run_finished(run_id, current));
        }
        if holder.as_deref() != Some(claim.owner.as_str()) || number != claim.number {
            return Err(StoreError::LeaseLost);
        }
        let run = finalize(&mut tx, run_id, status, error.as_deref()).await?;
        tx.commit().await?;
        Ok(run)
    }

    async fn fail_run(&self, tenant: &str, run_id: &str, error: &str) -> StoreResult<Run> {
        shared::fail(self, tenant, run_id, error).await
    }
}
