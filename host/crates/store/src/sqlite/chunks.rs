//! Chunks of a run's item positions (SQLite): how several processes
//! execute one run (see `docs/runs.md`). Every statement that changes a
//! chunk runs in a write transaction, which SQLite serializes; lease
//! expiry uses this machine's clock in milliseconds, like the run's lease.

use std::time::Duration;

use sqlx::{Row, Sqlite, Transaction};

use super::SqliteStore;
use crate::error::{StoreError, StoreResult};
use crate::models::{ChunkDone, ChunkGrant, Claim, Run, RunControl, RunStatus};
use crate::rows::{self, run_cols};
use crate::rules::{lease_ms, now, to_ms};
use crate::shared::runs::fetch;

/// The unfinished chunks `claim` holds, as `(first, end)` positions (the
/// write fence of a helper's results).
pub(super) async fn held_chunks(
    tx: &mut Transaction<'static, Sqlite>,
    run_id: &str,
    claim: &Claim,
) -> StoreResult<Vec<(i64, i64)>> {
    Ok(sqlx::query_as(
        "SELECT first_position, end_position FROM run_chunks WHERE run_id = ? AND owner = ? \
         AND claim_number = ? AND done = 0",
    )
    .bind(run_id)
    .bind(&claim.owner)
    .bind(claim.number)
    .fetch_all(&mut **tx)
    .await?)
}

/// See [`crate::RunStore::run_to_help`]: among the runs that need help,
/// the run of the tenant holding the fewest live chunks (not done, lease
/// not expired) per unit of weight, counted over every process's chunks of
/// running runs; the oldest run on a tie.
///
/// No index of its own: the candidates and `held` walk the running runs
/// through `runs_active`, and `held` their unfinished chunks whose lease
/// has not expired through `run_chunks_unfinished` (`(run_id,
/// lease_expires_at) WHERE done = 0`): a handful of rows per process
/// executing, however many runs ended before (the unfinished chunks a
/// cancelled run leaves behind are never read). SQLite uses the partial
/// index `runs_active` only when the query repeats its condition
/// (`status IN ('pending', 'running')`) word for word, hence the redundant
/// terms; without them both walk every run ever created.
pub(super) async fn run_to_help(
    s: &SqliteStore,
    owner: &str,
    executing: &[String],
) -> StoreResult<Option<(String, Run)>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        run_cols!(),
        " FROM runs WHERE id = ( \
         WITH held AS (SELECT h.tenant_id, COUNT(*) AS n FROM runs h \
             JOIN run_chunks c ON c.run_id = h.id \
             WHERE h.status IN ('pending', 'running') AND h.status = 'running' \
             AND c.done = 0 AND c.lease_expires_at > ?2 \
             GROUP BY h.tenant_id) \
         SELECT r.id FROM runs r JOIN tenants t ON t.id = r.tenant_id \
         LEFT JOIN held ON held.tenant_id = r.tenant_id \
         WHERE r.status IN ('pending', 'running') AND r.status = 'running' \
         AND r.cancel_requested = 0 \
         AND r.lease_owner IS NOT NULL AND r.lease_owner <> ?1 AND r.lease_expires_at > ?2 \
         AND r.id NOT IN (SELECT value FROM json_each(?3)) \
         AND r.exclusive = 0 AND r.chunk_end IS NOT NULL \
         AND (r.chunk_cursor < r.chunk_end OR EXISTS ( \
             SELECT 1 FROM run_chunks c WHERE c.run_id = r.id AND c.done = 0 \
             AND c.lease_expires_at <= ?2)) \
         ORDER BY CAST(COALESCE(held.n, 0) AS REAL) / t.weight, r.created_at, r.id \
         LIMIT 1)"
    ))
    .bind(owner)
    .bind(to_ms(now()))
    .bind(serde_json::to_string(executing).expect("strings serialize"))
    .fetch_optional(&s.reader)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let tenant: String = row.try_get("tenant_id")?;
    Ok(Some((tenant, rows::run(&row)?)))
}

/// See [`crate::RunStore::join_run`].
pub(super) async fn join_run(
    s: &SqliteStore,
    tenant: &str,
    run_id: &str,
    owner: &str,
) -> StoreResult<Claim> {
    let mut tx = s.write_tx().await?;
    let number: Option<i64> = sqlx::query_scalar(
        "UPDATE runs SET claim_number = claim_number + 1 \
         WHERE id = ? AND tenant_id = ? AND status = 'running' RETURNING claim_number",
    )
    .bind(run_id)
    .bind(tenant)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    match number {
        Some(number) => Ok(Claim {
            owner: owner.to_string(),
            number,
        }),
        None => {
            let run = fetch(&s.reader, tenant, run_id).await?;
            Err(StoreError::Conflict(format!(
                "run {run_id} is {}, not running",
                run.status
            )))
        }
    }
}

/// See [`crate::RunStore::claim_chunk`].
pub(super) async fn claim_chunk(
    s: &SqliteStore,
    run_id: &str,
    claim: &Claim,
    size: i64,
    lease: Duration,
) -> StoreResult<ChunkGrant> {
    let mut tx = s.write_tx().await?;
    // The clock is read once the write lock is held: a claim that waited
    // for it gets its whole lease.
    let at = to_ms(now());
    let expires = at.saturating_add(lease_ms(lease));
    type RunRow = (String, i64, Option<i64>, String, bool, Option<String>, i64);
    let run: Option<RunRow> = sqlx::query_as(
        "SELECT status, chunk_cursor, chunk_end, dataset_id, exclusive, lease_owner, lease_claim \
         FROM runs WHERE id = ?",
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
    // oldest work of the run (never one this claim held: it may still be
    // executing it).
    let lapsed: Option<(i64, i64)> = sqlx::query_as(
        "UPDATE run_chunks SET owner = ?2, claim_number = ?3, lease_expires_at = ?4 \
         WHERE run_id = ?1 AND first_position = ( \
             SELECT first_position FROM run_chunks WHERE run_id = ?1 AND done = 0 \
             AND lease_expires_at <= ?5 AND NOT (owner = ?2 AND claim_number = ?3) \
             ORDER BY first_position LIMIT 1) \
         RETURNING first_position, end_position",
    )
    .bind(run_id)
    .bind(&claim.owner)
    .bind(claim.number)
    .bind(expires)
    .bind(at)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((first, end)) = lapsed {
        tx.commit().await?;
        return Ok(ChunkGrant::Chunk { first, end });
    }
    let end = match end {
        Some(end) => end,
        None => sqlx::query_scalar("SELECT next_position FROM datasets WHERE id = ?")
            .bind(&dataset_id)
            .fetch_optional(&mut *tx)
            .await?
            .unwrap_or(0),
    };
    if cursor < end {
        let next = cursor.saturating_add(size.max(1)).min(end);
        sqlx::query(
            "INSERT INTO run_chunks (run_id, first_position, end_position, owner, claim_number, \
             lease_expires_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(run_id)
        .bind(cursor)
        .bind(next)
        .bind(&claim.owner)
        .bind(claim.number)
        .bind(expires)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE runs SET chunk_cursor = ?, chunk_end = ? WHERE id = ?")
            .bind(next)
            .bind(end)
            .bind(run_id)
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
    sqlx::query("UPDATE runs SET chunk_end = ? WHERE id = ? AND chunk_end IS NULL")
        .bind(end)
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
    let unfinished: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM run_chunks WHERE run_id = ? AND done = 0)",
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
    s: &SqliteStore,
    run_id: &str,
    claim: &Claim,
    first: i64,
) -> StoreResult<ChunkDone> {
    let mut tx = s.write_tx().await?;
    let done = sqlx::query(
        "UPDATE run_chunks SET done = 1 WHERE run_id = ? AND first_position = ? \
         AND owner = ? AND claim_number = ?",
    )
    .bind(run_id)
    .bind(first)
    .bind(&claim.owner)
    .bind(claim.number)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::LeaseLost);
    }
    // The same answer as `claim_chunk`'s `Done`, read under the same lock.
    let all_done: bool = sqlx::query_scalar(
        "SELECT chunk_end IS NOT NULL AND chunk_cursor >= chunk_end \
         AND NOT EXISTS (SELECT 1 FROM run_chunks WHERE run_id = ?1 AND done = 0) \
         FROM runs WHERE id = ?1",
    )
    .bind(run_id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(if all_done {
        ChunkDone::AllDone
    } else {
        ChunkDone::RunOpen
    })
}

/// See [`crate::RunStore::renew_chunks`].
pub(super) async fn renew_chunks(
    s: &SqliteStore,
    run_id: &str,
    claim: &Claim,
    lease: Duration,
) -> StoreResult<RunControl> {
    let mut tx = s.write_tx().await?;
    let cancel: Option<bool> =
        sqlx::query_scalar("SELECT cancel_requested FROM runs WHERE id = ? AND status = 'running'")
            .bind(run_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(cancel_requested) = cancel else {
        return Err(StoreError::LeaseLost);
    };
    sqlx::query(
        "UPDATE run_chunks SET lease_expires_at = ? \
         WHERE run_id = ? AND owner = ? AND claim_number = ? AND done = 0",
    )
    .bind(to_ms(now()).saturating_add(lease_ms(lease)))
    .bind(run_id)
    .bind(&claim.owner)
    .bind(claim.number)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(RunControl { cancel_requested })
}

/// See [`crate::RunStore::release_chunks`].
pub(super) async fn release_chunks(
    s: &SqliteStore,
    run_id: &str,
    claim: &Claim,
) -> StoreResult<()> {
    let mut tx = s.write_tx().await?;
    sqlx::query(
        "UPDATE run_chunks SET lease_expires_at = ? \
         WHERE run_id = ? AND owner = ? AND claim_number = ? AND done = 0",
    )
    .bind(to_ms(now()))
    .bind(run_id)
    .bind(&claim.owner)
    .bind(claim.number)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// See [`crate::RunStore::set_run_exclusive`].
pub(super) async fn set_run_exclusive(
    s: &SqliteStore,
    run_id: &str,
    claim: &Claim,
    exclusive: bool,
) -> StoreResult<()> {
    let mut tx = s.write_tx().await?;
    let set = sqlx::query(
        "UPDATE runs SET exclusive = ? WHERE id = ? AND lease_owner = ? AND lease_claim = ? \
         AND status = 'running'",
    )
    .bind(exclusive)
    .bind(run_id)
    .bind(&claim.owner)
    .bind(claim.number)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    if set.rows_affected() == 0 {
        return Err(StoreError::LeaseLost);
    }
    Ok(())
}
