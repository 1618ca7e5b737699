//! Reading results with their scores, on any backend.
//!
//! Writing a batch stays per backend (SQLite: chunked multi-row inserts in
//! the write transaction; PostgreSQL: one statement over arrays), and so
//! does loading the scores of a page of results (a list of item ids:
//! `json_each` vs `ANY`), behind [`ScoresOf`].

use std::collections::HashMap;
use std::future::Future;

use super::{Arg, Db, Handle, paged};
use crate::error::StoreResult;
use crate::models::*;
use crate::rows::{self, StoredRow};
use crate::sql;

/// Which columns of a score row to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScoreColumns {
    /// Everything ([`rows::score`]).
    Full,
    /// The metadata's `usage` instead of the metadata
    /// ([`rows::outline_score`]).
    Outline,
}

/// How a backend loads the score rows of some items of a run (every trial
/// of each), ordered by item, trial and position.
pub(crate) trait ScoresOf: Handle {
    fn score_rows(
        &self,
        run_id: &str,
        item_ids: &[&str],
        columns: ScoreColumns,
    ) -> impl Future<Output = StoreResult<Vec<<Self::Db as sqlx::Database>::Row>>> + Send;
}

/// Loads the scores of `results` (all of one run) and attaches them.
async fn attach_scores<S: ScoresOf>(
    s: &S,
    run_id: &str,
    results: &mut [RunResult],
) -> StoreResult<()> {
    if results.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = results.iter().map(|r| r.item_id.as_str()).collect();
    let rows = s.score_rows(run_id, &ids, ScoreColumns::Full).await?;
    let mut by_trial = scores_by_trial(&rows)?;
    for r in results {
        r.scores = by_trial
            .remove(&(r.item_id.clone(), r.trial))
            .unwrap_or_default();
    }
    Ok(())
}

/// Score rows grouped by the (item, trial) they belong to, in row order.
fn scores_by_trial<R: StoredRow>(rows: &[R]) -> StoreResult<HashMap<(String, i64), Vec<ScoreRow>>> {
    let mut by_trial: HashMap<(String, i64), Vec<ScoreRow>> = HashMap::new();
    for row in rows {
        let (key, score) = rows::score(row)?;
        by_trial.entry(key).or_default().push(score);
    }
    Ok(by_trial)
}

pub(crate) async fn list<DB: Db, S: ScoresOf<Db = DB>>(
    s: &S,
    tenant: &str,
    run_id: &str,
    page: Page,
) -> StoreResult<Paged<RunResult>> {
    super::runs::fetch(s.reads(), tenant, run_id).await?;
    let mut results = paged(
        s,
        (sql::results::COUNT, sql::results::LIST),
        |q| q.arg(run_id),
        page,
        |r| rows::result(r).map(|(_, res)| res),
    )
    .await?;
    attach_scores(s, run_id, &mut results.items).await?;
    Ok(results)
}

pub(crate) async fn filtered<DB: Db, S: ScoresOf<Db = DB>>(
    s: &S,
    tenant: &str,
    run_id: &str,
    filter: &ResultFilter,
    page: Page,
) -> StoreResult<Paged<RunResult>> {
    if filter.is_empty() {
        return list(s, tenant, run_id, page).await;
    }
    super::runs::fetch(s.reads(), tenant, run_id).await?;
    let (scorer, below) = match &filter.score_below {
        Some(b) => (Some(b.scorer_id.as_str()), Some(b.below)),
        None => (None, None),
    };
    let mut results = paged(
        s,
        (sql::results::FILTERED_COUNT, sql::results::FILTERED_LIST),
        |q| q.arg(run_id).arg(filter.failed_only).arg(scorer).arg(below),
        page,
        |r| rows::result(r).map(|(_, res)| res),
    )
    .await?;
    attach_scores(s, run_id, &mut results.items).await?;
    Ok(results)
}

pub(crate) async fn target_records<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    run_id: &str,
    from_index: i64,
    to_index: i64,
) -> StoreResult<Vec<TargetRecord>> {
    super::runs::fetch(s.reads(), tenant, run_id).await?;
    let rows = sqlx::query(sql::results::TARGET_RECORDS)
        .arg(run_id)
        .arg(from_index)
        .arg(to_index)
        .fetch_all(s.reads())
        .await?;
    rows.iter().map(rows::target_record).collect()
}

/// Runs `sql` (the backend's spelling of "model of each result's target
/// metadata, counted"; binds: run) for the tenant's run `run_id`.
pub(crate) async fn target_models<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    run_id: &str,
    sql: &'static str,
) -> StoreResult<Vec<ModelCount>> {
    super::runs::fetch(s.reads(), tenant, run_id).await?;
    let rows = sqlx::query(sql).arg(run_id).fetch_all(s.reads()).await?;
    rows.iter()
        .map(|r| {
            Ok(ModelCount {
                model: r.text("model")?,
                items: r.int("items")?,
            })
        })
        .collect()
}

pub(crate) async fn outlines_after_seq<DB: Db, S: ScoresOf<Db = DB>>(
    s: &S,
    tenant: &str,
    run_id: &str,
    after_seq: i64,
    limit: i64,
) -> StoreResult<Vec<(i64, ResultOutline)>> {
    outlines(
        s,
        tenant,
        run_id,
        sql::results::OUTLINES_AFTER_SEQ,
        after_seq,
        limit,
    )
    .await
}

pub(crate) async fn outlines_by_index<DB: Db, S: ScoresOf<Db = DB>>(
    s: &S,
    tenant: &str,
    run_id: &str,
    after_index: i64,
    limit: i64,
) -> StoreResult<Vec<ResultOutline>> {
    let page = outlines(
        s,
        tenant,
        run_id,
        sql::results::OUTLINES_BY_INDEX,
        after_index,
        limit,
    );
    Ok(page.await?.into_iter().map(|(_, o)| o).collect())
}

/// Outlines from `statement` (binds: run, cursor, limit) with their scores.
async fn outlines<DB: Db, S: ScoresOf<Db = DB>>(
    s: &S,
    tenant: &str,
    run_id: &str,
    statement: &'static str,
    after: i64,
    limit: i64,
) -> StoreResult<Vec<(i64, ResultOutline)>> {
    super::runs::fetch(s.reads(), tenant, run_id).await?;
    let rows = sqlx::query(statement)
        .arg(run_id)
        .arg(after)
        .arg(limit.max(0))
        .fetch_all(s.reads())
        .await?;
    let mut outlines = rows
        .iter()
        .map(rows::outline)
        .collect::<StoreResult<Vec<_>>>()?;
    if outlines.is_empty() {
        return Ok(outlines);
    }
    let ids: Vec<&str> = outlines.iter().map(|(_, o)| o.item_id.as_str()).collect();
    let score_rows = s.score_rows(run_id, &ids, ScoreColumns::Outline).await?;
    let mut by_trial: HashMap<(String, i64), (Vec<ScoreRow>, Vec<ScoreUsage>)> = HashMap::new();
    for row in &score_rows {
        let (key, score, usage) = rows::outline_score(row)?;
        let (scores, usages) = by_trial.entry(key).or_default();
        if let Some(usage) = usage {
            usages.push(ScoreUsage {
                scorer_id: score.scorer_id.clone(),
                usage,
            });
        }
        scores.push(score);
    }
    for (_, o) in &mut outlines {
        (o.scores, o.score_usage) = by_trial
            .remove(&(o.item_id.clone(), o.trial))
            .unwrap_or_default();
    }
    Ok(outlines)
}

pub(crate) async fn in_index_range<DB: Db, S: ScoresOf<Db = DB>>(
    s: &S,
    tenant: &str,
    run_id: &str,
    first: i64,
    last: i64,
) -> StoreResult<Vec<RunResult>> {
    super::runs::fetch(s.reads(), tenant, run_id).await?;
    let rows = sqlx::query(sql::results::IN_INDEX_RANGE)
        .arg(run_id)
        .arg(first)
        .arg(last)
        .fetch_all(s.reads())
        .await?;
    let mut results = rows
        .iter()
        .map(|r| rows::result(r).map(|(_, res)| res))
        .collect::<StoreResult<Vec<_>>>()?;
    attach_scores(s, run_id, &mut results).await?;
    Ok(results)
}

pub(crate) async fn after_seq<DB: Db, S: ScoresOf<Db = DB>>(
    s: &S,
    tenant: &str,
    run_id: &str,
    after_seq: i64,
    limit: i64,
) -> StoreResult<Vec<(i64, RunResult)>> {
    super::runs::fetch(s.reads(), tenant, run_id).await?;
    let rows = sqlx::query(sql::results::AFTER_SEQ)
        .arg(run_id)
        .arg(after_seq)
        .arg(limit.max(0))
        .fetch_all(s.reads())
        .await?;
    let (seqs, mut results): (Vec<i64>, Vec<RunResult>) = rows
        .iter()
        .map(rows::result)
        .collect::<StoreResult<Vec<_>>>()?
        .into_iter()
        .unzip();
    attach_scores(s, run_id, &mut results).await?;
    Ok(seqs.into_iter().zip(results).collect())
}
