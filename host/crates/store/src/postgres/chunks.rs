//! Chunks of a run's item positions (PostgreSQL): how several processes
//! execute one run (see `docs/runs.md`). Chunk claims lock the run's row,
//! so claims of one run are serialized (each is a few milliseconds at
//! most); lease expiry uses the database clock like the run's own lease.

use std::time::Duration;

use sqlx::Row;

use super::PostgresStore;
use crate::error::{StoreError, StoreResult};
use crate::models::{ChunkDone, ChunkGrant, Claim, Run, RunControl, RunStatus};
use crate::rows::{self, run_cols};
use crate::rules::lease_ms;
use crate::shared::runs::fetch;

/// See [`crate::RunStore::run_to_help`]; same order as the SQLite
/// backend: the run of the tenant holding the fewest live chunks per unit
/// of weight across every process, the oldest run on a tie.
///
/// No index of its own: `held` walks the running runs (`runs_active`) and
/// their unfinished chunks whose lease has not expired
/// (`run_chunks_unfinished`, `(run_id, lease_expires_at) WHERE NOT done`),
/// a handful of rows per process executing; the unfinished chunks a
/// cancelled run leaves behind are never read.
pub(super) async fn run_to_help(
    s: &PostgresStore,
    owner: &str,
    executing: &[String],
) -> StoreResult<Option<(String, Run)>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        run_cols!(),
        " FROM runs WHERE id = ( \
         WITH held AS (SELECT h.tenant_id, COUNT(*) AS n FROM runs h \
             JOIN run_chunks c ON c.run_id = h.id \
             WHERE h.status = 'running' AND NOT c.done AND c.lease_expires_at > now() \
             GROUP BY h.tenant_id) \
         SELECT r.id FROM runs r JOIN tenants t ON t.id = r.tenant_id \
         LEFT JOIN held ON held.tenant_id = r.tenant_id \
         WHERE r.status = 'running' AND NOT r.cancel_requested \
         AND r.lease_owner IS NOT NULL AND r.lease_owner <> $1 AND r.lease_expires_at > now() \
         AND r.id <> ALL($2) \
         AND NOT r.exclusive AND r.chunk_end IS NOT NULL \
         AND (r.chunk_cursor < r.chunk_end OR EXISTS ( \
             SELECT 1 FROM run_chunks c WHERE c.run_id = r.id AND NOT c.done \
             AND c.lease_expires_at <= now())) \
         ORDER BY COALESCE(held.n, 0)::float8 / t.weight, r.created_at, r.id \
         LIMIT 1)"
    ))
    .bind(owner)
    .bind(executing)
    .fetch_optional(&s.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let tenant: String = row.try_get("tenant_id")?;
    Ok(Some((tenant, rows::run(&row)?)))
}

/// See [`crate::RunStore::join_run`].
pub(super) async fn join_run(
    s: &PostgresStore,
    tenant: &str,
    run_id: &str,
    owner: &str,
) -> StoreResult<Claim> {
    let number: Option<i64> = sqlx::query_scalar(
        "UPDATE runs SET claim_number = claim_number + 1 \
         WHERE id = $1 AND tenant_id = $2 AND status = 'running' RETURNING claim_number",
    )
    .bind(run_id)
    .bind(tenant)
    .fetch_optional(&s.pool)
    .await?;
    match number {
        Some(number) => Ok(Claim {
            owner: owner.to_string(),
            number,
        }),
        None => {
            let run = fetch(&s.pool, tenant, run_id).await?;
            Err(StoreError::Conflict(format!(
                "run {run_id} is {}, not running",
                run.status
            )))
        }
    }
}

/// See [`crate::RunStore::claim_chunk`].
pub(super) async fn claim_chunk(
    s: &PostgresStore,
    run_id: &str,
    claim: &Claim,
    size: i64,
    lease: Duration,
) -> StoreResult<ChunkGrant> {
    let lease = lease_ms(lease) as f64;
    let mut tx = s.tx().await?;
    type RunRow = (String, i64, Option<i64>, String, bool, Option<String>, i64);
    let run: Option<RunRow> = sqlx::query_as(
        "SELECT status, chunk_cursor, chunk_end, dataset_id, exclusive, lease_owner, lease_claim \
         FROM runs WHERE id = $1 FOR UPDATE",
    )
    .bind(run_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((status, cursor, end, dataset_id, exclusive, holder, lease_claim)) = run else {
        return Err(StoreError::not_found("Run", run_id));
    };
    if RunStatus::parse(&status) != Some(RunStatus::Running) {
        return Ok(ChunkGrant::Stopped);
    }
    if exclusive && (holder.as_deref() != Some(claim.owner.as_str()) || lease_claim != claim.number)
    {
        return Ok(ChunkGrant::Busy);
    }
    // A chunk whose holder stopped renewing it first: its items are the
    // oldest work of the run. (Never one this claim held: it may still be
    // executing it. The conditions are repeated outside the subquery,
    // which PostgreSQL evaluates once: a chunk renewed or finished while
    // this statement waited for its row lock is left alone.)
    let lapsed: Option<(i64, i64)> = sqlx::query_as(
        "UPDATE run_chunks SET owner = $2, claim_number = $3, \
         lease_expires_at = clock_timestamp() + $4 * INTERVAL '1 millisecond' \
         WHERE run_id = $1 AND NOT done AND lease_expires_at <= now() \
         AND NOT (owner = $2 AND claim_number = $3) AND first_position = ( \
             SELECT first_position FROM run_chunks WHERE run_id = $1 AND NOT done \
             AND lease_expires_at <= now() AND NOT (owner = $2 AND claim_number = $3) \
             ORDER BY first_position LIMIT 1) \
         RETURNING first_position, end_position",
    )
    .bind(run_id)
    .bind(&claim.owner)
    .bind(claim.number)
    .bind(lease)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((first, end)) = lapsed {
        tx.commit().await?;
        return Ok(ChunkGrant::Chunk { first, end });
    }
    let end = match end {
        Some(end) => end,
        None => sqlx::query_scalar("SELECT next_position FROM datasets WHERE id = $1")
            .bind(&dataset_id)
            .fetch_optional(&mut *tx)
            .await?
            .unwrap_or(0),
    };
    if cursor < end {
        let next = cursor.saturating_add(size.max(1)).min(end);
        sqlx::query(
            "INSERT INTO run_chunks (run_id, first_position, end_position, owner, claim_number, \
             lease_expires_at) \
             VALUES ($1, $2, $3, $4, $5, clock_timestamp() + $6 * INTERVAL '1 millisecond')",
        )
        .bind(run_id)
        .bind(cursor)
        .bind(next)
        .bind(&claim.owner)
        .bind(claim.number)
        .bind(lease)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE runs SET chunk_cursor = $2, chunk_end = $3 WHERE id = $1")
            .bind(run_id)
            .bind(next)
            .bind(end)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        return Ok(ChunkGrant::Chunk {
            first: cursor,
            end: next,
        });
    }
    // Every position handed out (or none to hand out: the end is fixed
    // all the same, so that the run is not offered to helpers).
    sqlx::query("UPDATE runs SET chunk_end = $2 WHERE id = $1 AND chunk_end IS NULL")
        .bind(run_id)
        .bind(end)
        .execute(&mut *tx)
        .await?;
    let unfinished: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM run_chunks WHERE run_id = $1 AND NOT done)",
    )
    .bind(run_id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(if unfinished {
        ChunkGrant::Busy
    } else {
        ChunkGrant::Done
    })
}

/// See [`crate::RunStore::finish_chunk`].
pub(super) async fn finish_chunk(
    s: &PostgresStore,
    run_id: &str,
    claim: &Claim,
    first: i64,
) -> StoreResult<ChunkDone> {
    // The outer query reads the snapshot from before the update: the
    // chunk marked here is left out of "some chunk not done" by its
    // position. Another process finishing its own last chunk at the same
    // instant may make both answer `RunOpen`; the lead's next claim then
    // says `Done` (finished chunks never reopen, so `AllDone` is final).
    let row: Option<bool> = sqlx::query_scalar(
        "WITH marked AS (UPDATE run_chunks SET done = TRUE WHERE run_id = $1 \
           AND first_position = $2 AND owner = $3 AND claim_number = $4 RETURNING 1) \
         SELECT r.chunk_end IS NOT NULL AND r.chunk_cursor >= r.chunk_end \
           AND NOT EXISTS (SELECT 1 FROM run_chunks c WHERE c.run_id = $1 AND NOT c.done \
             AND c.first_position <> $2) \
         FROM runs r WHERE r.id = $1 AND EXISTS (SELECT 1 FROM marked)",
    )
    .bind(run_id)
    .bind(first)
    .bind(&claim.owner)
    .bind(claim.number)
    .fetch_optional(&s.pool)
    .await?;
    match row {
        None => Err(StoreError::LeaseLost),
        Some(true) => Ok(ChunkDone::AllDone),
        Some(false) => Ok(ChunkDone::RunOpen),
    }
}

/// See [`crate::RunStore::renew_chunks`].
pub(super) async fn renew_chunks(
    s: &PostgresStore,
    run_id: &str,
    claim: &Claim,
    lease: Duration,
) -> StoreResult<RunControl> {
    let cancel: Option<bool> = sqlx::query_scalar(
        "WITH renewed AS (UPDATE run_chunks SET \
             lease_expires_at = now() + $4 * INTERVAL '1 millisecond' \
             WHERE run_id = $1 AND owner = $2 AND claim_number = $3 AND NOT done \
             AND EXISTS (SELECT 1 FROM runs WHERE id = $1 AND status = 'running')) \
         SELECT cancel_requested FROM runs WHERE id = $1 AND status = 'running'",
    )
    .bind(run_id)
    .bind(&claim.owner)
    .bind(claim.number)
    .bind(lease_ms(lease) as f64)
    .fetch_optional(&s.pool)
    .await?;
    match cancel {
        Some(cancel_requested) => Ok(RunControl { cancel_requested }),
        None => Err(StoreError::LeaseLost),
    }
}

/// See [`crate::RunStore::release_chunks`].
pub(super) async fn release_chunks(
    s: &PostgresStore,
    run_id: &str,
    claim: &Claim,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE run_chunks SET lease_expires_at = now() \
         WHERE run_id = $1 AND owner = $2 AND claim_number = $3 AND NOT done",
    )
    .bind(run_id)
    .bind(&claim.owner)
    .bind(claim.number)
    .execute(&s.pool)
    .await?;
    Ok(())
}

/// See [`crate::RunStore::set_run_exclusive`].
pub(super) async fn set_run_exclusive(
    s: &PostgresStore,
    run_id: &str,
    claim: &Claim,
    exclusive: bool,
) -> StoreResult<()> {
    let set = sqlx::query(
        "UPDATE runs SET exclusive = $4 WHERE id = $1 AND lease_owner = $2 AND lease_claim = $3 \
         AND status = 'running'",
    )
    .bind(run_id)
    .bind(&claim.owner)
    .bind(claim.number)
    .bind(exclusive)
    .execute(&s.pool)
    .await?;
    if set.rows_affected() == 0 {
        return Err(StoreError::LeaseLost);
    }
    Ok(())
}
