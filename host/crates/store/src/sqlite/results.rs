//! Results and scores (SQLite).

use async_trait::async_trait;

use std::collections::{HashMap, HashSet};

use sqlx::{QueryBuilder, Sqlite};

use super::SqliteStore;
use super::rows::{to_json, to_json_opt};
use crate::error::{StoreError, StoreResult};
use crate::models::*;
use crate::rows::{self, score_cols};
use crate::rules::{INSERT_CHUNK, check_batch, finite, new_id, normalized_score, now, to_ms};
use crate::sql;
use crate::store::{ResultStore, RunStore};

/// Loads the scores of `results` (all of one run) and attaches them.
async fn attach_scores(
    s: &SqliteStore,
    run_id: &str,
    results: &mut [RunResult],
) -> StoreResult<()> {
    if results.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = results.iter().map(|r| r.item_id.as_str()).collect();
    let rows = sqlx::query(concat!(
        "SELECT ",
        score_cols!(),
        " FROM scores WHERE run_id = $1 AND item_id IN (SELECT value FROM json_each($2)) \
         ORDER BY item_id, ord"
    ))
    .bind(run_id)
    .bind(serde_json::to_string(&ids).expect("strings serialize"))
    .fetch_all(&s.reader)
    .await?;
    let mut by_item: HashMap<String, Vec<ScoreRow>> = HashMap::new();
    for row in &rows {
        let (item, score) = rows::score(row)?;
        by_item.entry(item).or_default().push(score);
    }
    for r in results {
        r.scores = by_item.remove(&r.item_id).unwrap_or_default();
    }
    Ok(())
}

#[async_trait]
impl ResultStore for SqliteStore {
    async fn write_results(
        &self,
        run_id: &str,
        owner: &str,
        batch: Vec<NewResult>,
    ) -> StoreResult<WriteOutcome> {
        check_batch(&batch)?;
        let mut tx = self.write_tx().await?;
        // The fence: only the lease holder of a running run may write.
        let holder: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT status, lease_owner FROM runs WHERE id = ?")
                .bind(run_id)
                .fetch_optional(&mut *tx)
                .await?;
        match holder {
            None => return Err(StoreError::not_found("Run", run_id)),
            Some((status, lease_owner))
                if status != "running" || lease_owner.as_deref() != Some(owner) =>
            {
                return Err(StoreError::LeaseLost);
            }
            Some(_) => {}
        }
        if batch.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let at = to_ms(now());
        let mut inserted: HashSet<String> = HashSet::with_capacity(batch.len());
        for chunk in batch.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO results (id, run_id, item_id, item_index, item_version, input, output, \
             expected_output, latency, error, error_kind, started_at, completed_at, retry_count, \
             trace_id, logs, created_at) ",
            );
            qb.push_values(chunk, |mut b, r| {
                b.push_bind(new_id())
                    .push_bind(run_id)
                    .push_bind(&r.item_id)
                    .push_bind(r.item_index)
                    .push_bind(r.item_version)
                    .push_bind(to_json(&r.input))
                    .push_bind(to_json_opt(r.output.as_ref()))
                    .push_bind(to_json_opt(r.expected_output.as_ref()))
                    .push_bind(finite(r.latency).unwrap_or(0.0))
                    .push_bind(&r.error)
                    .push_bind(&r.error_kind)
                    .push_bind(to_ms(r.started_at))
                    .push_bind(to_ms(r.completed_at))
                    .push_bind(r.retry_count)
                    .push_bind(&r.trace_id)
                    .push_bind(to_json_opt(r.logs.as_ref()))
                    .push_bind(at);
            });
            qb.push(" ON CONFLICT (run_id, item_id) DO NOTHING RETURNING item_id");
            let ids: Vec<String> = qb.build_query_scalar().fetch_all(&mut *tx).await?;
            inserted.extend(ids);
        }
        let fresh: Vec<&NewResult> = batch
            .iter()
            .filter(|r| inserted.contains(&r.item_id))
            .collect();
        let scores: Vec<(&str, usize, &ScoreRow)> = fresh
            .iter()
            .flat_map(|r| {
                r.scores
                    .iter()
                    .enumerate()
                    .map(move |(i, sc)| (r.item_id.as_str(), i, sc))
            })
            .collect();
        for chunk in scores.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO scores (run_id, item_id, scorer_id, ord, scorer_name, score, reason, \
             error, metadata) ",
            );
            qb.push_values(chunk, |mut b, (item_id, ord, sc)| {
                b.push_bind(run_id)
                    .push_bind(*item_id)
                    .push_bind(&sc.scorer_id)
                    .push_bind(*ord as i64)
                    .push_bind(&sc.scorer_name)
                    .push_bind(normalized_score(sc))
                    .push_bind(&sc.reason)
                    .push_bind(&sc.error)
                    .push_bind(to_json_opt(sc.metadata.as_ref()));
            });
            qb.push(" ON CONFLICT DO NOTHING");
            qb.build().execute(&mut *tx).await?;
        }
        let failed = fresh.iter().filter(|r| r.error.is_some()).count() as i64;
        let succeeded = fresh.len() as i64 - failed;
        sqlx::query(
        "UPDATE runs SET succeeded_count = succeeded_count + ?, failed_count = failed_count + ?, \
         updated_at = ? WHERE id = ?",
    )
    .bind(succeeded)
    .bind(failed)
    .bind(at)
    .bind(run_id)
    .execute(&mut *tx)
    .await?;
        tx.commit().await?;
        Ok(WriteOutcome {
            inserted: fresh.len() as u64,
            duplicates: (batch.len() - fresh.len()) as u64,
        })
    }

    async fn list_results(
        &self,
        tenant: &str,
        run_id: &str,
        page: Page,
    ) -> StoreResult<Paged<RunResult>> {
        self.get_run(tenant, run_id).await?;
        let total: i64 = sqlx::query_scalar(sql::results::COUNT)
            .bind(run_id)
            .fetch_one(&self.reader)
            .await?;
        let rows = sqlx::query(sql::results::LIST)
            .bind(run_id)
            .bind(page.limit())
            .bind(page.offset())
            .fetch_all(&self.reader)
            .await?;
        let mut items = rows
            .iter()
            .map(|r| rows::result(r).map(|(_, res)| res))
            .collect::<StoreResult<Vec<_>>>()?;
        attach_scores(self, run_id, &mut items).await?;
        Ok(page.wrap(items, total))
    }

    async fn results_after_seq(
        &self,
        tenant: &str,
        run_id: &str,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<(i64, RunResult)>> {
        self.get_run(tenant, run_id).await?;
        let rows = sqlx::query(sql::results::AFTER_SEQ)
            .bind(run_id)
            .bind(after_seq)
            .bind(limit.max(0))
            .fetch_all(&self.reader)
            .await?;
        let (seqs, mut results): (Vec<i64>, Vec<RunResult>) = rows
            .iter()
            .map(rows::result)
            .collect::<StoreResult<Vec<_>>>()?
            .into_iter()
            .unzip();
        attach_scores(self, run_id, &mut results).await?;
        Ok(seqs.into_iter().zip(results).collect())
    }
}
