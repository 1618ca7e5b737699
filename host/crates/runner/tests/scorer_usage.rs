//! The tokens scorers (an LLM judge) report in their scores' metadata are
//! summed per scorer and over all scorers, apart from the target's, on
//! both backends: the stored-run summary (read in the database, page by
//! page) and a summary of the full results agree with sums computed here
//! from the numbers written, and metadata without a usable count is left
//! out without breaking the sum.

mod common;

use std::sync::Arc;
use std::time::Duration;

use assay_runner::StatsBuilder;
use assay_runner::stats::summarize_stored;
use assay_store::*;
use chrono::Utc;
use common::{TENANT, dataset_run, store};
use serde_json::{Value, json};

/// More than one page of the stored summary (1000 results a page).
const ITEMS: usize = 1_050;

/// What judge `j` (0 or 1) reported for item `i`: `Ok((prompt,
/// completion))`, or `Err(metadata)` holding no usable count.
fn judge_report(j: usize, i: usize) -> Result<(u64, u64), Value> {
    let i64 = i as u64;
    match (j, i % 7) {
        (0, 3) => Err(json!({"usage": {"totalTokens": "12", "promptTokens": -4}})),
        (0, 5) => Err(json!({"model": "judge-model"})),
        (1, 0) => Err(json!("usage")),
        (1, 4) => Err(json!({"usage": [1, 2, 3]})),
        (1, 6) => Err(Value::Null),
        (0, _) => Ok((3 * i64 + 11, i64 % 9 + 1)),
        _ => Ok((i64 + 40, 2)),
    }
}

fn metadata(j: usize, i: usize) -> Option<Value> {
    match judge_report(j, i) {
        // Judge 0 writes the SDK's names, judge 1 OpenAI's (no total).
        Ok((p, c)) if j == 0 => Some(json!({
            "usage": {"promptTokens": p, "completionTokens": c, "totalTokens": p + c},
            "model": "judge-model",
        })),
        Ok((p, c)) => Some(json!({"usage": {"prompt_tokens": p, "completion_tokens": c}})),
        Err(Value::Null) => None,
        Err(hostile) => Some(hostile),
    }
}

/// (prompt, completion, total, scores) summed from [`judge_report`].
fn expected(j: usize) -> (u64, u64, u64, u64) {
    (0..ITEMS)
        .filter_map(|i| judge_report(j, i).ok())
        .fold((0, 0, 0, 0), |s, (p, c)| {
            (s.0 + p, s.1 + c, s.2 + p + c, s.3 + 1)
        })
}

async fn write_judged_run(store: &Arc<dyn Store>) -> Run {
    let run = dataset_run(store, (0..ITEMS).map(|i| json!(i)).collect()).await;
    let items = store
        .items_at_version(TENANT, &run.dataset_id, run.dataset_version, None, 10_000)
        .await
        .unwrap();
    assert_eq!(items.len(), ITEMS);
    let claimed = store
        .claim_run(TENANT, &run.id, "writer", Duration::from_secs(60))
        .await
        .unwrap();
    let claim = Claim::of("writer", &claimed);
    let now = Utc::now();
    let batch: Vec<NewResult> = items
        .iter()
        .enumerate()
        .map(|(i, item)| NewResult {
            item_id: item.id.clone(),
            item_index: item.position,
            trial: 0,
            item_version: item.version,
            input: item.input.clone(),
            output: Some(json!("out")),
            expected_output: None,
            latency: 1.0,
            error: None,
            error_kind: None,
            started_at: now,
            completed_at: now,
            retry_count: 0,
            trace_id: None,
            // The target reports 5 tokens an item: never part of the
            // judges' sums.
            target_metadata: Some(json!({"usage": {"promptTokens": 4, "completionTokens": 1}})),
            logs: None,
            scores: ["judge-a", "judge-b"]
                .iter()
                .enumerate()
                .map(|(j, id)| ScoreRow {
                    scorer_id: (*id).into(),
                    scorer_name: format!("Judge {id}"),
                    score: Some(0.5),
                    reason: Some("a verdict".into()),
                    error: None,
                    metadata: metadata(j, i),
                })
                .collect(),
        })
        .collect();
    for chunk in batch.chunks(400) {
        store
            .write_results(&run.id, &claim, chunk.to_vec())
            .await
            .unwrap();
    }
    store
        .finish_run(&run.id, &claim, RunStatus::Completed, None)
        .await
        .unwrap();
    store.get_run(TENANT, &run.id).await.unwrap()
}

async fn sums_match_the_data(store: Arc<dyn Store>) {
    let run = write_judged_run(&store).await;
    let stored = summarize_stored(&store, TENANT, &run, 0.5).await.unwrap();
    // The same statistics from the full results (scores with metadata).
    let mut builder = StatsBuilder::new(&run.scorer_ids, 0.5);
    let mut after = 0;
    loop {
        let page = store
            .results_after_seq(TENANT, &run.id, after, 300)
            .await
            .unwrap();
        let Some((last, _)) = page.last() else { break };
        after = *last;
        page.iter().for_each(|(_, r)| builder.add_result(r));
    }
    let full = builder.finish(&run);

    for stats in [&stored, &full] {
        let of = |id: &str| {
            let u = stats
                .scorers
                .iter()
                .find(|s| s.scorer_id == id)
                .and_then(|s| s.token_usage)
                .unwrap_or_else(|| panic!("{id} reported usage: {stats:?}"));
            (
                u.tokens.prompt_tokens,
                u.tokens.completion_tokens,
                u.tokens.total_tokens,
                u.scores,
            )
        };
        let (a, b) = (expected(0), expected(1));
        assert_eq!(of("judge-a"), a);
        assert_eq!(of("judge-b"), b);
        let all = stats.scorer_token_usage.expect("scorer usage");
        assert_eq!(
            (
                all.tokens.prompt_tokens,
                all.tokens.completion_tokens,
                all.tokens.total_tokens,
                all.scores
            ),
            (a.0 + b.0, a.1 + b.1, a.2 + b.2, a.3 + b.3)
        );
        let target = stats.token_usage.expect("target usage");
        assert_eq!(
            (target.tokens.total_tokens, target.items),
            (5 * ITEMS as u64, ITEMS as u64),
            "the target's usage stays its own"
        );
        // The hostile metadata is in the data, and cost no score.
        assert!(a.3 < ITEMS as u64 && b.3 < ITEMS as u64);
        assert!(stats.scorers.iter().all(|s| s.scored_count == ITEMS as u64));
    }
    let json = serde_json::to_value(&stored).unwrap();
    assert_eq!(
        json["scorerTokenUsage"]["scores"],
        expected(0).3 + expected(1).3
    );
    assert_eq!(
        json["scorers"][1]["tokenUsage"]["totalTokens"],
        expected(1).2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scorer_usage_sums_match_the_data_on_sqlite() {
    let (store, _dir) = store().await;
    sums_match_the_data(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scorer_usage_sums_match_the_data_on_postgres() {
    let url = assay_test_support::postgres::fresh_postgres_database();
    let store = assay_store::connect(&url).await.unwrap();
    sums_match_the_data(store).await;
}
