//! Results and scores (PostgreSQL).
//!
//! Reading results is the shared code in [`crate::shared::results`]; here
//! stay the batch write (one statement over arrays) and loading the scores
//! of a list of items (`= ANY`).

use async_trait::async_trait;

use sqlx::postgres::PgRow;

use super::PostgresStore;
use super::rows::{j, jo};
use crate::error::{StoreError, StoreResult};
use crate::models::*;
use crate::rows::{outline_score_cols, score_cols};
use crate::rules::{check_batch, check_trials, finite, new_id, normalized_score, now, trunc_ms};
use crate::shared::results::{self as shared, ScoreColumns, ScoresOf};
use crate::store::ResultStore;

/// The whole batch in one statement (one round trip, one implicit
/// transaction): lock the run row if the claim (owner `$2`, number `$28`)
/// holds its lease, or else holds an unfinished chunk around every item of
/// the batch (a process helping execute the run): the fence;
/// insert the results that are new, their scores, and bump the counters by
/// what was inserted. The row lock also orders concurrent batches of one
/// run, so `seq` follows commit order within a run. A trial the run does
/// not have (`bad`) stops the whole batch.
const WRITE_BATCH: &str = "\
WITH fence AS (
    SELECT id, repeats FROM runs WHERE id = $1 AND status = 'running'
        AND ((lease_owner = $2 AND lease_claim = $28) OR NOT EXISTS (
            SELECT 1 FROM UNNEST($6::int8[]) AS p(ix) WHERE NOT EXISTS (
                SELECT 1 FROM run_chunks c WHERE c.run_id = $1 AND c.owner = $2
                    AND c.claim_number = $28 AND NOT c.done
                    AND c.first_position <= p.ix AND p.ix < c.end_position)))
        FOR UPDATE
), bad AS (
    SELECT 1 FROM fence, UNNEST($29::int8[]) AS t(trial) WHERE t.trial >= fence.repeats LIMIT 1
), ins AS (
    INSERT INTO results (id, run_id, item_id, item_index, item_version, input, output,
        expected_output, latency, error, error_kind, started_at, completed_at, retry_count,
        trace_id, target_metadata, logs, created_at, trial)
    SELECT u.id, $1, u.item_id, u.item_index, u.item_version, u.input, u.output,
        u.expected_output, u.latency, u.error, u.error_kind, u.started_at, u.completed_at,
        u.retry_count, u.trace_id, u.target_metadata, u.logs, $3, u.trial
    FROM UNNEST($4::text[], $5::text[], $6::int8[], $7::int8[], $8::jsonb[], $9::jsonb[],
        $10::jsonb[], $11::float8[], $12::text[], $13::text[], $14::timestamptz[],
        $15::timestamptz[], $16::int8[], $17::text[], $18::jsonb[], $27::jsonb[], $29::int8[])
        AS u(id, item_id, item_index, item_version, input, output, expected_output, latency,
            error, error_kind, started_at, completed_at, retry_count, trace_id, logs,
            target_metadata, trial)
    WHERE EXISTS (SELECT 1 FROM fence) AND NOT EXISTS (SELECT 1 FROM bad)
    ON CONFLICT (run_id, item_id, trial) DO NOTHING
    RETURNING item_id, trial, error IS NOT NULL AS failed
), sc AS (
    INSERT INTO scores (run_id, item_id, trial, scorer_id, ord, scorer_name, score, reason,
        error, metadata)
    SELECT $1, s.item_id, s.trial, s.scorer_id, s.ord, s.scorer_name, s.score, s.reason,
        s.error, s.metadata
    FROM UNNEST($19::text[], $20::text[], $21::int8[], $22::text[], $23::float8[],
        $24::text[], $25::text[], $26::jsonb[], $30::int8[])
        AS s(item_id, scorer_id, ord, scorer_name, score, reason, error, metadata, trial)
    JOIN ins ON ins.item_id = s.item_id AND ins.trial = s.trial
    ON CONFLICT DO NOTHING
), upd AS (
    UPDATE runs SET
        succeeded_count = succeeded_count + (SELECT COUNT(*) FROM ins WHERE NOT failed),
        failed_count = failed_count + (SELECT COUNT(*) FROM ins WHERE failed),
        updated_at = $3
    WHERE id = (SELECT id FROM fence)
)
SELECT (SELECT COUNT(*) FROM fence), (SELECT COUNT(*) FROM ins), (SELECT COUNT(*) FROM bad),
    (SELECT repeats FROM fence)";

/// What [`WRITE_BATCH`] answers: runs fenced (0 or 1), results inserted,
/// trials out of range (0 or 1), and the run's repeats (when fenced).
type Written = (i64, i64, i64, Option<i64>);

impl ScoresOf for PostgresStore {
    async fn score_rows(
        &self,
        run_id: &str,
        item_ids: &[&str],
        columns: ScoreColumns,
    ) -> StoreResult<Vec<PgRow>> {
        let sql = match columns {
            ScoreColumns::Full => concat!(
                "SELECT ",
                score_cols!(),
                " FROM scores WHERE run_id = $1 AND item_id = ANY($2) ORDER BY item_id, trial, ord"
            ),
            ScoreColumns::Outline => concat!(
                "SELECT ",
                outline_score_cols!(),
                " FROM scores WHERE run_id = $1 AND item_id = ANY($2) ORDER BY item_id, trial, ord"
            ),
        };
        Ok(sqlx::query(sql)
            .bind(run_id)
            .bind(item_ids)
            .fetch_all(&self.pool)
            .await?)
    }
}

#[async_trait]
impl ResultStore for PostgresStore {
    async fn write_results(
        &self,
        run_id: &str,
        claim: &Claim,
        batch: Vec<NewResult>,
    ) -> StoreResult<WriteOutcome> {
        check_batch(&batch)?;
        let n = batch.len();
        let mut item_ids = Vec::with_capacity(n);
        let mut indexes = Vec::with_capacity(n);
        let mut versions = Vec::with_capacity(n);
        let mut inputs = Vec::with_capacity(n);
        let mut outputs = Vec::with_capacity(n);
        let mut expected = Vec::with_capacity(n);
        let mut latencies = Vec::with_capacity(n);
        let mut errors = Vec::with_capacity(n);
        let mut kinds = Vec::with_capacity(n);
        let mut started = Vec::with_capacity(n);
        let mut completed = Vec::with_capacity(n);
        let mut retries = Vec::with_capacity(n);
        let mut traces = Vec::with_capacity(n);
        let mut logs = Vec::with_capacity(n);
        let mut target_meta = Vec::with_capacity(n);
        let mut trials = Vec::with_capacity(n);
        let mut s_trials = vec![];
        let (mut s_items, mut s_ids, mut s_ords, mut s_names) = (vec![], vec![], vec![], vec![]);
        let (mut s_scores, mut s_reasons, mut s_errors, mut s_meta) =
            (vec![], vec![], vec![], vec![]);
        for r in &batch {
            item_ids.push(r.item_id.as_str());
            indexes.push(r.item_index);
            versions.push(r.item_version);
            inputs.push(j(&r.input));
            outputs.push(jo(r.output.as_ref()));
            expected.push(jo(r.expected_output.as_ref()));
            latencies.push(finite(r.latency).unwrap_or(0.0));
            errors.push(r.error.as_deref());
            kinds.push(r.error_kind.as_deref());
            started.push(trunc_ms(r.started_at));
            completed.push(trunc_ms(r.completed_at));
            retries.push(r.retry_count);
            traces.push(r.trace_id.as_deref());
            logs.push(jo(r.logs.as_ref()));
            target_meta.push(jo(r.target_metadata.as_ref()));
            trials.push(r.trial);
            for (ord, sc) in r.scores.iter().enumerate() {
                s_items.push(r.item_id.as_str());
                s_trials.push(r.trial);
                s_ids.push(sc.scorer_id.as_str());
                s_ords.push(ord as i64);
                s_names.push(sc.scorer_name.as_str());
                s_scores.push(normalized_score(sc));
                s_reasons.push(sc.reason.as_deref());
                s_errors.push(sc.error.as_deref());
                s_meta.push(jo(sc.metadata.as_ref()));
            }
        }
        let ids: Vec<String> = (0..n).map(|_| new_id()).collect();
        let (fenced, inserted, bad, repeats): Written = sqlx::query_as(WRITE_BATCH)
            .bind(run_id)
            .bind(&claim.owner)
            .bind(now())
            .bind(&ids)
            .bind(&item_ids)
            .bind(&indexes)
            .bind(&versions)
            .bind(&inputs)
            .bind(&outputs)
            .bind(&expected)
            .bind(&latencies)
            .bind(&errors)
            .bind(&kinds)
            .bind(&started)
            .bind(&completed)
            .bind(&retries)
            .bind(&traces)
            .bind(&logs)
            .bind(&s_items)
            .bind(&s_ids)
            .bind(&s_ords)
            .bind(&s_names)
            .bind(&s_scores)
            .bind(&s_reasons)
            .bind(&s_errors)
            .bind(&s_meta)
            .bind(&target_meta)
            .bind(claim.number)
            .bind(&trials)
            .bind(&s_trials)
            .fetch_one(&self.pool)
            .await?;
        if bad > 0 {
            check_trials(&batch, repeats.unwrap_or(1))?;
        }
        if fenced == 0 {
            let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM runs WHERE id = $1")
                .bind(run_id)
                .fetch_optional(&self.pool)
                .await?;
            return Err(match exists {
                Some(_) => StoreError::LeaseLost,
                None => StoreError::not_found("Run", run_id),
            });
        }
        Ok(WriteOutcome {
            inserted: inserted as u64,
            duplicates: (n as i64 - inserted) as u64,
        })
    }

    async fn stored_trials(
        &self,
        tenant: &str,
        run_id: &str,
        item_ids: &[&str],
    ) -> StoreResult<Vec<(String, i64)>> {
        crate::shared::runs::fetch(&self.pool, tenant, run_id).await?;
        Ok(sqlx::query_as(
            "SELECT item_id, trial FROM results WHERE run_id = $1 AND item_id = ANY($2)",
        )
        .bind(run_id)
        .bind(item_ids)
        .fetch_all(&self.pool)
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
        const SQL: &str = "SELECT m AS model, COUNT(*) AS items FROM (SELECT target_metadata->>'model' AS m FROM results \
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
