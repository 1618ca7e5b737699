//! Runs and their leases (PostgreSQL).
//!
//! Lease expiry uses the database clock (`now()`), shared by every host.

use async_trait::async_trait;

use std::time::Duration;

use sqlx::{Executor, Postgres, QueryBuilder, Row};

use super::PostgresStore;
use super::datasets::fetch as fetch_dataset;
use super::rows::j;
use crate::error::{StoreError, StoreResult, conflict_on_unique};
use crate::models::*;
use crate::rows::{self, run_cols};
use crate::rules::{check_terminal, check_version, lease_ms, new_id, now, run_finished};
use crate::sql;
use crate::store::RunStore;

/// The tenant's run `id` through any executor.
pub async fn fetch<'e, E>(ex: E, tenant: &str, id: &str) -> StoreResult<Run>
where
    E: Executor<'e, Database = Postgres>,
{
    let row = sqlx::query(concat!(
        "SELECT ",
        run_cols!(),
        " FROM runs WHERE id = $1 AND tenant_id = $2"
    ))
    .bind(id)
    .bind(tenant)
    .fetch_optional(ex)
    .await?
    .ok_or_else(|| StoreError::not_found("Run", id))?;
    rows::run(&row)
}

/// Like [`fetch`], locking the row until the transaction ends.
async fn lock<'e, E>(ex: E, tenant: &str, id: &str) -> StoreResult<Run>
where
    E: Executor<'e, Database = Postgres>,
{
    let row = sqlx::query(concat!(
        "SELECT ",
        run_cols!(),
        " FROM runs WHERE id = $1 AND tenant_id = $2 FOR UPDATE"
    ))
    .bind(id)
    .bind(tenant)
    .fetch_optional(ex)
    .await?
    .ok_or_else(|| StoreError::not_found("Run", id))?;
    rows::run(&row)
}

/// The lease of a run (any tenant), locked: status, owner, and whether the
/// lease is still live by the database clock.
pub async fn lock_lease<'e, E>(ex: E, id: &str) -> StoreResult<(RunStatus, Option<String>, bool)>
where
    E: Executor<'e, Database = Postgres>,
{
    let (status, owner, live): (String, Option<String>, bool) = sqlx::query_as(
        "SELECT status, lease_owner, COALESCE(lease_expires_at > now(), FALSE) \
         FROM runs WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(ex)
    .await?
    .ok_or_else(|| StoreError::not_found("Run", id))?;
    let status = RunStatus::parse(&status)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown run status `{status}`")))?;
    Ok((status, owner, live))
}

/// Sets the final status and exact counts of a run (inside a transaction
/// that holds the run's row lock).
async fn finalize(
    tx: &mut sqlx::PgConnection,
    run_id: &str,
    status: RunStatus,
    error: Option<&str>,
) -> StoreResult<Run> {
    let (done, failed): (i64, i64) = sqlx::query_as(sql::runs::COUNT_RESULTS)
        .bind(run_id)
        .fetch_one(&mut *tx)
        .await?;
    let row = sqlx::query(concat!(
        "UPDATE runs SET status = $1, error = COALESCE($2, error), succeeded_count = $3, \
         failed_count = $4, skipped_count = GREATEST(total_items - $5, 0), completed_at = $6, \
         lease_owner = NULL, lease_expires_at = NULL, updated_at = $6 WHERE id = $7 RETURNING ",
        run_cols!()
    ))
    .bind(status.as_str())
    .bind(error)
    .bind(done - failed)
    .bind(failed)
    .bind(done)
    .bind(now())
    .bind(run_id)
    .fetch_one(&mut *tx)
    .await?;
    rows::run(&row)
}

#[async_trait]
impl RunStore for PostgresStore {
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
        let mut tx = self.tx().await?;
        // FOR SHARE: a concurrent delete of the dataset waits for us (or we
        // see it gone).
        let row = sqlx::query(concat!(
            "SELECT ",
            crate::rows::dataset_cols!(),
            " FROM datasets WHERE id = $1 AND tenant_id = $2 FOR SHARE"
        ))
        .bind(&run.dataset_id)
        .bind(tenant)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::not_found("Dataset", &run.dataset_id))?;
        check_version(&rows::dataset(&row)?, run.dataset_version)?;
        sqlx::query(sql::runs::INSERT)
            .bind(&run.id)
            .bind(tenant)
            .bind(&run.dataset_id)
            .bind(run.dataset_version)
            .bind(run.target_type.as_str())
            .bind(&run.target_id)
            .bind(sqlx::types::Json(&run.scorer_ids))
            .bind(run.total_items)
            .bind(j(&run.config))
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_on_unique(e, || format!("a run with id {} exists", run.id)))?;
        tx.commit().await?;
        Ok(run)
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
        if let Some(ds) = dataset_id {
            fetch_dataset(&self.pool, tenant, ds).await?;
        }
        let filter = |qb: &mut QueryBuilder<Postgres>| {
            qb.push(" FROM runs WHERE tenant_id = ")
                .push_bind(tenant.to_string());
            if let Some(ds) = dataset_id {
                qb.push(" AND dataset_id = ").push_bind(ds.to_string());
            }
        };
        let mut count = QueryBuilder::<Postgres>::new("SELECT COUNT(*)");
        filter(&mut count);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;
        let mut qb = QueryBuilder::<Postgres>::new(concat!("SELECT ", run_cols!()));
        filter(&mut qb);
        qb.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(page.limit())
            .push(" OFFSET ")
            .push_bind(page.offset());
        let rows = qb.build().fetch_all(&self.pool).await?;
        let items = rows.iter().map(rows::run).collect::<StoreResult<_>>()?;
        Ok(page.wrap(items, total))
    }

    async fn delete_run(&self, tenant: &str, id: &str) -> StoreResult<()> {
        let mut tx = self.tx().await?;
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
    ) -> StoreResult<Option<(String, Run)>> {
        // Interrupted runs (expired or released lease) first, then pending runs
        // of tenants below their maxActiveRuns; oldest first. SKIP LOCKED: a run
        // another host is claiming right now is passed over, not waited for.
        // (Two hosts claiming pending runs of one tenant at the same instant may
        // both pass the maxActiveRuns check: the limit can be exceeded by the
        // number of concurrent claimers.)
        let row = sqlx::query(concat!(
        "WITH c AS (SELECT r.id AS claim_id FROM runs r WHERE \
           (r.status = 'running' AND (r.lease_owner IS NULL OR r.lease_expires_at <= now())) \
           OR (r.status = 'pending' AND \
             (SELECT COUNT(*) FROM runs a WHERE a.tenant_id = r.tenant_id AND a.status = 'running') \
             < (SELECT t.max_active_runs FROM tenants t WHERE t.id = r.tenant_id)) \
           ORDER BY (r.status = 'running') DESC, r.created_at, r.id \
           LIMIT 1 FOR UPDATE SKIP LOCKED) \
         UPDATE runs SET status = 'running', started_at = COALESCE(started_at, $1), \
         lease_owner = $2, lease_expires_at = now() + $3 * INTERVAL '1 millisecond', \
         updated_at = $1 FROM c WHERE runs.id = c.claim_id RETURNING ",
        run_cols!()
    ))
    .bind(now())
    .bind(owner)
    .bind(lease_ms(lease) as f64)
    .fetch_optional(&self.pool)
    .await?;
        let Some(row) = row else { return Ok(None) };
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
        let mut tx = self.tx().await?;
        let run = lock(&mut *tx, tenant, run_id).await?;
        let (_, holder, live) = lock_lease(&mut *tx, run_id).await?;
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
         lease_owner = $2, lease_expires_at = now() + $3 * INTERVAL '1 millisecond', \
         updated_at = $1 WHERE id = $4 RETURNING ",
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
        owner: &str,
        lease: Duration,
    ) -> StoreResult<RunControl> {
        let cancel: Option<bool> = sqlx::query_scalar(
            "UPDATE runs SET lease_expires_at = now() + $1 * INTERVAL '1 millisecond' \
         WHERE id = $2 AND lease_owner = $3 AND status = 'running' RETURNING cancel_requested",
        )
        .bind(lease_ms(lease) as f64)
        .bind(run_id)
        .bind(owner)
        .fetch_optional(&self.pool)
        .await?;
        match cancel {
            Some(cancel_requested) => Ok(RunControl { cancel_requested }),
            None => Err(StoreError::LeaseLost),
        }
    }

    async fn release_run(&self, run_id: &str, owner: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL \
         WHERE id = $1 AND lease_owner = $2",
        )
        .bind(run_id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
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
        super::items::scan_items(
            self,
            &run.dataset_id,
            run.dataset_version,
            Some(run_id),
            after_position,
            limit,
        )
        .await
    }

    async fn finish_run(
        &self,
        run_id: &str,
        owner: &str,
        status: RunStatus,
        error: Option<String>,
    ) -> StoreResult<Run> {
        check_terminal(status)?;
        let mut tx = self.tx().await?;
        let (current, holder, _) = lock_lease(&mut *tx, run_id).await?;
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
        let mut tx = self.tx().await?;
        let run = lock(&mut *tx, tenant, run_id).await?;
        if run.status.is_terminal() {
            return Err(run_finished(run_id, run.status));
        }
        let run = finalize(&mut tx, run_id, RunStatus::Failed, Some(error)).await?;
        tx.commit().await?;
        Ok(run)
    }
}
