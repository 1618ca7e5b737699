//! Runs and their leases (PostgreSQL).
//!
//! Creating, reading, listing, deleting and failing runs is the shared code
//! in [`crate::shared::runs`]. Claims, leases, cancellation and the pending
//! items stay here. Lease expiry uses the database clock (`now()`), shared
//! by every host.

use async_trait::async_trait;

use std::time::Duration;

use sqlx::{Executor, Postgres};

use super::PostgresStore;
use super::{chunks, claim};
use crate::error::{StoreError, StoreResult};
use crate::models::*;
use crate::rows::{self, run_cols};
use crate::rules::ClaimScope;
use crate::rules::{check_terminal, lease_ms, now, run_finished};
use crate::shared::runs::{self as shared, fetch, lock};
use crate::store::RunStore;

/// The lease of a run (any tenant), locked: status, owner, whether the
/// lease is still live by the database clock, and the claim number.
pub async fn lock_lease<'e, E>(
    ex: E,
    id: &str,
) -> StoreResult<(RunStatus, Option<String>, bool, i64)>
where
    E: Executor<'e, Database = Postgres>,
{
    let (status, owner, live, claim): (String, Option<String>, bool, i64) = sqlx::query_as(
        "SELECT status, lease_owner, COALESCE(lease_expires_at > now(), FALSE), lease_claim \
         FROM runs WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(ex)
    .await?
    .ok_or_else(|| StoreError::not_found("Run", id))?;
    let status = RunStatus::parse(&status)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown run status `{status}`")))?;
    Ok((status, owner, live, claim))
}

/// Ends a run inside `tx`, which holds the run's row lock (see
/// [`shared::finalize`]).
async fn finalize(
    tx: &mut sqlx::PgConnection,
    run_id: &str,
    status: RunStatus,
    error: Option<&str>,
) -> StoreResult<Run> {
    shared::finalize::<Postgres>(tx, run_id, status, error).await
}

#[async_trait]
impl RunStore for PostgresStore {
    async fn create_run(&self, tenant: &str, new: NewRun) -> StoreResult<Run> {
        shared::create(self, tenant, new).await
    }

    async fn get_run(&self, tenant: &str, id: &str) -> StoreResult<Run> {
        fetch(&self.pool, tenant, id).await
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
        let mut tx = self.tx().await?;
        let run = lock(&mut *tx, tenant, id).await?;
        let at = now();
        let row = match run.status {
            RunStatus::Pending => {
                sqlx::query(concat!(
                    "UPDATE runs SET status = 'cancelled', cancel_requested = TRUE, \
                 skipped_count = total_items - succeeded_count - failed_count, \
                 completed_at = $1, updated_at = $1 WHERE id = $2 RETURNING ",
                    run_cols!()
                ))
                .bind(at)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?
            }
            RunStatus::Running => {
                // Nobody holds the run (its process stopped or died): nobody
                // would ever see the request, so it is finalized right here.
                let unheld: bool = sqlx::query_scalar(
                    "UPDATE runs SET cancel_requested = TRUE, updated_at = $1 WHERE id = $2 \
                     RETURNING lease_owner IS NULL OR lease_expires_at <= now()",
                )
                .bind(at)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
                if unheld {
                    let run = finalize(&mut tx, id, RunStatus::Cancelled, None).await?;
                    tx.commit().await?;
                    return Ok(run);
                }
                sqlx::query(concat!("SELECT ", run_cols!(), " FROM runs WHERE id = $1"))
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?
            }
            done => return Err(run_finished(id, done)),
        };
        tx.commit().await?;
        rows::run(&row)
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
        let mut tx = self.tx().await?;
        let run = lock(&mut *tx, tenant, run_id).await?;
        let (_, holder, live, _) = lock_lease(&mut *tx, run_id).await?;
        if run.status.is_terminal() {
            return Err(run_finished(run_id, run.status));
        }
        if let Some(holder) = holder
            && holder != owner
            && run.status == RunStatus::Running
            && live
        {
            return Err(StoreError::Conflict(format!(
                "run {run_id} is held by another process"
            )));
        }
        let row = sqlx::query(concat!(
            "UPDATE runs SET status = 'running', started_at = COALESCE(started_at, $1), \
         takeovers = runs.takeovers + CASE WHEN runs.status = 'running' AND runs.lease_owner IS NOT NULL AND runs.lease_owner <> $2 THEN 1 ELSE 0 END, \
         lease_owner = $2, lease_expires_at = now() + $3 * INTERVAL '1 millisecond', \
         updated_at = $1, claim_number = runs.claim_number + 1, lease_claim = runs.claim_number + 1 WHERE id = $4 RETURNING ",
            run_cols!()
        ))
        .bind(now())
        .bind(owner)
        .bind(lease_ms(lease) as f64)
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
        let cancel: Option<bool> = sqlx::query_scalar(
            "UPDATE runs SET lease_expires_at = now() + $1 * INTERVAL '1 millisecond' \
         WHERE id = $2 AND lease_owner = $3 AND lease_claim = $4 AND status = 'running' \
         RETURNING cancel_requested",
        )
        .bind(lease_ms(lease) as f64)
        .bind(run_id)
        .bind(&claim.owner)
        .bind(claim.number)
        .fetch_optional(&self.pool)
        .await?;
        match cancel {
            Some(cancel_requested) => Ok(RunControl { cancel_requested }),
            None => Err(StoreError::LeaseLost),
        }
    }

    async fn release_run(&self, run_id: &str, claim: &Claim) -> StoreResult<()> {
        sqlx::query(
            "UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL \
         WHERE id = $1 AND lease_owner = $2 AND lease_claim = $3",
        )
        .bind(run_id)
        .bind(&claim.owner)
        .bind(claim.number)
        .execute(&self.pool)
        .await?;
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
        super::items::scan_items(
            self,
            &run.dataset_id,
            run.dataset_version,
            Some((run_id, run.repeats)),
            after_position,
            end_position,
            limit,
        )
        .await
    }

    async fn finish_run(
        &self,
        run_id: &str,
        claim: &Claim,
        status: RunStatus,
        error: Option<String>,
    ) -> StoreResult<Run> {
        check_terminal(status)?;
        let mut tx = self.tx().await?;
        let (current, holder, _, number) = lock_lease(&mut *tx, run_id).await?;
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
