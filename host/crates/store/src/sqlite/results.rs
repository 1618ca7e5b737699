//! Results and scores (SQLite).
//!
//! Reading results is the shared code in [`crate::shared::results`]; here
//! stay the batch write (chunked multi-row inserts inside the write
//! transaction) and loading the scores of a list of items (`json_each`).

use async_trait::async_trait;

use std::collections::HashSet;

use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite};

use super::SqliteStore;
use super::rows::{to_json, to_json_opt};
use crate::error::{StoreError, StoreResult};
use crate::models::*;
use crate::rows::{outline_score_cols, score_cols};
use crate::rules::{
    INSERT_CHUNK, check_batch, check_trials, finite, new_id, normalized_score, now, to_ms,
};
use crate::shared::results::{self as shared, ScoreColumns, ScoresOf};
use crate::store::ResultStore;

impl ScoresOf for SqliteStore {
    async fn score_rows(
        &self,
        run_id: &str,
        item_ids: &[&str],
        columns: ScoreColumns,
    ) -> StoreResult<Vec<SqliteRow>> {
        let sql = match columns {
            ScoreColumns::Full => concat!(
                "SELECT ",
                score_cols!(),
                " FROM scores WHERE run_id = $1 AND item_id IN (SELECT value FROM json_each($2)) \
                 ORDER BY item_id, trial, ord"
            ),
            ScoreColumns::Outline => concat!(
                "SELECT ",
                outline_score_cols!(),
                " FROM scores WHERE run_id = $1 AND item_id IN (SELECT value FROM json_each($2)) \
                 ORDER BY item_id, trial, ord"
            ),
        };
        Ok(sqlx::query(sql)
            .bind(run_id)
            .bind(serde_json::to_string(item_ids).expect("strings serialize"))
            .fetch_all(&self.reader)
            .await?)
    }
}

#[async_trait]
impl ResultStore for SqliteStore {
    async fn write_results(
        &self,
        run_id: &str,
        claim: &Claim,
        batch: Vec<NewResult>,
    ) -> StoreResult<WriteOutcome> {
        check_batch(&batch)?;
        let mut tx = self.write_tx().await?;
        // The fence: a running run, and the claim holding its lease, or
        // else a claim holding an unfinished chunk around every item of the
        // batch (a process helping execute the run).
        let holder: Option<(String, Option<String>, i64, i64)> = sqlx::query_as(
            "SELECT status, lease_owner, lease_claim, repeats FROM runs WHERE id = ?",
        )
        .bind(run_id)
        .fetch_optional(&mut *tx)
        .await?;
        let repeats = match holder {
            None => return Err(StoreError::not_found("Run", run_id)),
            Some((status, _, _, _)) if status != "running" => return Err(StoreError::LeaseLost),
            Some((_, lease_owner, number, repeats))
                if lease_owner.as_deref() == Some(claim.owner.as_str())
                    && number == claim.number =>
            {
                repeats
            }
            Some((_, _, _, repeats)) => {
                let held = super::chunks::held_chunks(&mut tx, run_id, claim).await?;
                let inside = |ix: i64| held.iter().any(|&(first, end)| first <= ix && ix < end);
                if !batch.iter().all(|r| inside(r.item_index)) {
                    return Err(StoreError::LeaseLost);
                }
                repeats
            }
        };
        check_trials(&batch, repeats)?;
        if batch.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let at = to_ms(now());
        let mut inserted: Vec<(String, i64)> = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO results (id, run_id, item_id, item_index, item_version, input, output, \
             expected_output, latency, error, error_kind, started_at, completed_at, retry_count, \
             trace_id, target_metadata, logs, created_at, trial) ",
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
                    .push_bind(to_json_opt(r.target_metadata.as_ref()))
                    .push_bind(to_json_opt(r.logs.as_ref()))
                    .push_bind(at)
                    .push_bind(r.trial);
            });
            qb.push(" ON CONFLICT (run_id, item_id, trial) DO NOTHING RETURNING item_id, trial");
            let ids: Vec<(String, i64)> = qb.build_query_as().fetch_all(&mut *tx).await?;
            inserted.extend(ids);
        }
        let inserted: HashSet<(&str, i64)> =
            inserted.iter().map(|(id, t)| (id.as_str(), *t)).collect();
        let fresh: Vec<&NewResult> = batch
            .iter()
            .filter(|r| inserted.contains(&(r.item_id.as_str(), r.trial)))
            .collect();
        let scores: Vec<(&str, i64, usize, &ScoreRow)> = fresh
            .iter()
            .flat_map(|r| {
                r.scores
                    .iter()
                    .enumerate()
                    .map(move |(i, sc)| (r.item_id.as_str(), r.trial, i, sc))
            })
            .collect();
        for chunk in scores.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO scores (run_id, item_id, trial, scorer_id, ord, scorer_name, score, \
             reason, error, metadata) ",
            );
            qb.push_values(chunk, |mut b, (item_id, trial, ord, sc)| {
                b.push_bind(run_id)
                    .push_bind(*item_id)
                    .push_bind(*trial)
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

    async fn stored_trials(
        &self,
        tenant: &str,
        run_id: &str,
        item_ids: &[&str],
    ) -> StoreResult<Vec<(String, i64)>> {
        crate::shared::runs::fetch(&self.reader, tenant, run_id).await?;
        Ok(sqlx::query_as(
            "SELECT item_id, trial FROM results WHERE run_id = $1 \
             AND item_id IN (SELECT value FROM json_each($2))",
        )
        .bind(run_id)
        .bind(serde_json::to_string(item_ids).expect("strings serialize"))
        .fetch_all(&self.reader)
        .await?)
    }

    async fn list_results(
        &self,
        tenant: &str,
        run_id: &str,
        page: Page,
    ) -> StoreResult<Paged<RunResult>> {
        shared::list(self, tenant, run_id, page).await
    }

    async fn filter_results(
        &self,
        tenant: &str,
        run_id: &str,
        filter: &ResultFilter,
        page: Page,
    ) -> StoreResult<Paged<RunResult>> {
        shared::filtered(self, tenant, run_id, filter, page).await
    }

    async fn target_records(
        &self,
        tenant: &str,
        run_id: &str,
        from_index: i64,
        to_index: i64,
    ) -> StoreResult<Vec<TargetRecord>> {
        shared::target_records(self, tenant, run_id, from_index, to_index).await
    }

    async fn target_models(&self, tenant: &str, run_id: &str) -> StoreResult<Vec<ModelCount>> {
        const SQL: &str = "SELECT m AS model, COUNT(*) AS items FROM (SELECT CAST(json_extract(target_metadata, '$.model') AS TEXT) AS m FROM results \
             WHERE run_id = $1) AS t WHERE m IS NOT NULL GROUP BY m ORDER BY m";
        shared::target_models(self, tenant, run_id, SQL).await
    }

    async fn result_outlines_by_index(
        &self,
        tenant: &str,
        run_id: &str,
        after_index: i64,
        limit: i64,
    ) -> StoreResult<Vec<ResultOutline>> {
        shared::outlines_by_index(self, tenant, run_id, after_index, limit).await
    }

    async fn results_in_index_range(
        &self,
        tenant: &str,
        run_id: &str,
        first: i64,
        last: i64,
    ) -> StoreResult<Vec<RunResult>> {
        shared::in_index_range(self, tenant, run_id, first, last).await
    }

    async fn result_outlines_after_seq(
        &self,
        tenant: &str,
        run_id: &str,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<(i64, ResultOutline)>> {
        shared::outlines_after_seq(self, tenant, run_id, after_seq, limit).await
    }

    async fn results_after_seq(
        &self,
        tenant: &str,
        run_id: &str,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<(i64, RunResult)>> {
        shared::after_seq(self, tenant, run_id, after_seq, limit).await
    }
}
