//! Which run a process takes next (SQLite): runs whose lease ended first,
//! then pending runs fairly across tenants and in creation order within a
//! tenant (see `docs/fair-share.md`).

use std::time::Duration;

use sqlx::Row;

use super::SqliteStore;
use crate::error::StoreResult;
use crate::models::Run;
use crate::rows::{self, run_cols};
use crate::rules::{ClaimScope, lease_ms, now, to_ms};

/// The claim: one statement, so that choosing and taking a run cannot race.
const CLAIM: &str = concat!(
    "UPDATE runs SET status = 'running', started_at = COALESCE(started_at, ?1), \
         takeovers = takeovers + CASE WHEN status = 'running' AND lease_owner IS NOT NULL AND lease_owner <> ?2 THEN 1 ELSE 0 END, \
         lease_owner = ?2, lease_expires_at = ?3, updated_at = ?1, claim_number = claim_number + 1, lease_claim = claim_number + 1 \
         WHERE id = ( \
           WITH active AS (SELECT tenant_id, COUNT(*) AS n FROM runs \
             WHERE status IN ('pending', 'running') AND status = 'running' GROUP BY tenant_id) \
           SELECT r.id FROM runs r JOIN tenants t ON t.id = r.tenant_id \
           LEFT JOIN active a ON a.tenant_id = r.tenant_id WHERE \
           r.status IN ('pending', 'running') AND \
           r.id NOT IN (SELECT value FROM json_each(?5)) AND ( \
           (?4 = 0 AND r.status = 'running' \
             AND (r.lease_owner IS NULL OR r.lease_expires_at <= ?1)) \
           OR (r.status = 'pending' AND COALESCE(a.n, 0) < \
             CASE WHEN ?4 = 0 THEN t.max_active_runs ELSE MIN(t.max_active_runs, 1) END)) \
           ORDER BY CASE r.status WHEN 'running' THEN 0 ELSE 1 END, \
             CAST(COALESCE(a.n, 0) AS REAL) / t.weight, r.created_at, r.id \
           LIMIT 1) \
         RETURNING ",
    run_cols!()
);

/// Takes the next run for `owner`. Order: runs whose lease expired or was
/// released (not in [`ClaimScope::IdleTenants`]); then the pending run of
/// the tenant with the fewest runs `running` per unit of weight, among
/// tenants below their `maxActiveRuns`, oldest run first; ties go to the
/// older run. Runs in `executing` are passed over.
///
/// Both reads of `runs` repeat the partial index `runs_active`'s condition
/// (`status IN ('pending', 'running')`) word for word: SQLite uses a partial
/// index only when the query states its condition, and without it each
/// claim scanned every run ever stored, inside the write transaction (about
/// 200 ms with 200,000 finished runs, against 0.08 ms through the index;
/// BENCHMARKS.md, "Claiming a run with a long history").
pub async fn claim_next_run(
    s: &SqliteStore,
    owner: &str,
    lease: Duration,
    scope: ClaimScope,
    executing: &[String],
) -> StoreResult<Option<(String, Run)>> {
    let mut tx = s.write_tx().await?;
    let at = to_ms(now());
    let row = sqlx::query(CLAIM)
        .bind(at)
        .bind(owner)
        .bind(at + lease_ms(lease))
        .bind(i64::from(scope == ClaimScope::IdleTenants))
        .bind(serde_json::to_string(executing).expect("strings serialize"))
        .fetch_optional(&mut *tx)
        .await?;
    tx.commit().await?;
    let Some(row) = row else { return Ok(None) };
    let tenant: String = row.try_get("tenant_id")?;
    Ok(Some((tenant, rows::run(&row)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The query plan's steps (`detail` of `EXPLAIN QUERY PLAN`).
    async fn plan(s: &SqliteStore, sql: &str, binds: usize) -> Vec<String> {
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(explain));
        for _ in 0..binds {
            query = query.bind("[]");
        }
        query
            .fetch_all(&s.reader)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>("detail"))
            .collect()
    }

    /// The claim (inside the write transaction) and a tenant's usage (read
    /// by every trigger) reach runs only through the partial index of
    /// unfinished runs: a plan that scans `runs` costs time with every run
    /// ever stored (about 0.2 s per claim at 200,000).
    #[tokio::test]
    async fn the_claim_and_the_usage_read_only_unfinished_runs() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display());
        let s = SqliteStore::connect(&url).await.unwrap();
        for (name, sql, binds) in [
            ("claim", CLAIM, 5),
            ("usage", crate::sql::tenancy::USAGE, 1),
        ] {
            let steps = plan(&s, sql, binds).await;
            assert!(
                steps
                    .iter()
                    .all(|d| !d.starts_with("SCAN r") && d != "SCAN runs"),
                "{name} scans runs: {steps:?}"
            );
            assert!(
                steps.iter().any(|d| d.contains("USING INDEX runs_active")),
                "{name} does not use runs_active: {steps:?}"
            );
        }
    }
}
