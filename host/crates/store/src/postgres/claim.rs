//! Which run a process takes next (PostgreSQL): runs whose lease ended
//! first, then pending runs fairly across tenants and in creation order
//! within a tenant (see `docs/fair-share.md`). Every process sharing the
//! database counts the same `running` rows, so the order is fair across
//! processes too.

use std::time::Duration;

use sqlx::Row;

use super::PostgresStore;
use crate::error::StoreResult;
use crate::models::Run;
use crate::rows;
use crate::rules::{ClaimScope, lease_ms, now};

/// Takes the next run for `owner`, passing over the runs in `executing`;
/// same order as the SQLite backend.
///
/// `SKIP LOCKED`: a run another process is claiming right now is passed
/// over, not waited for. Two processes claiming at the same instant both
/// count the `running` rows committed before them, so a tenant's
/// `maxActiveRuns` (and the idle-tenant rule) can be exceeded by the number
/// of concurrent claimers.
pub async fn claim_next_run(
    s: &PostgresStore,
    owner: &str,
    lease: Duration,
    scope: ClaimScope,
    executing: &[String],
) -> StoreResult<Option<(String, Run)>> {
    let row = sqlx::query(concat!(
        "WITH active AS (SELECT tenant_id, COUNT(*) AS n FROM runs \
           WHERE status = 'running' GROUP BY tenant_id), \
         c AS (SELECT r.id FROM runs r JOIN tenants t ON t.id = r.tenant_id \
           LEFT JOIN active a ON a.tenant_id = r.tenant_id WHERE \
           r.id <> ALL($5) AND ( \
           (NOT $4 AND r.status = 'running' \
             AND (r.lease_owner IS NULL OR r.lease_expires_at <= now())) \
           OR (r.status = 'pending' AND COALESCE(a.n, 0) < \
             CASE WHEN $4 THEN LEAST(t.max_active_runs, 1) ELSE t.max_active_runs END)) \
           ORDER BY (r.status = 'running') DESC, \
             COALESCE(a.n, 0)::float8 / t.weight, r.created_at, r.id \
           LIMIT 1 FOR UPDATE OF r SKIP LOCKED) \
         UPDATE runs SET status = 'running', started_at = COALESCE(started_at, $1), \
         takeovers = runs.takeovers + CASE WHEN runs.status = 'running' AND runs.lease_owner IS NOT NULL AND runs.lease_owner <> $2 THEN 1 ELSE 0 END, \
         lease_owner = $2, lease_expires_at = now() + $3 * INTERVAL '1 millisecond', \
         updated_at = $1, claim_number = runs.claim_number + 1, lease_claim = runs.claim_number + 1 FROM c WHERE runs.id = c.id RETURNING ",
        "runs.id, runs.tenant_id, runs.dataset_id, runs.dataset_version, runs.target_type, \
         runs.target_id, runs.scorer_ids, runs.status, runs.total_items, runs.succeeded_count, \
         runs.failed_count, runs.skipped_count, runs.config, runs.error, runs.cancel_requested, \
         runs.takeovers, runs.parent_run_id, runs.repeats, runs.started_at, runs.completed_at, runs.created_at, runs.updated_at, \
         runs.lease_claim AS claim_number, runs.exclusive"
    ))
    .bind(now())
    .bind(owner)
    .bind(lease_ms(lease) as f64)
    .bind(scope == ClaimScope::IdleTenants)
    .bind(executing)
    .fetch_optional(&s.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let tenant: String = row.try_get("tenant_id")?;
    Ok(Some((tenant, rows::run(&row)?)))
}
