//! Comparing two runs walks both side by side a page at a time: the
//! statistics and the item pairs must come out as if both runs were read
//! whole, across page boundaries and with items missing on either side.

use std::sync::Arc;
use std::time::Duration;

use assay_runner::compare::{CompareOptions, ItemWindow, compare_runs};
use assay_store::*;
use chrono::Utc;
use serde_json::json;

const T: &str = DEFAULT_TENANT;

/// A run over `items` whose result for item `i` is written when `score(i)`
/// is `Some` (its `exact` score), as a process executing it would.
async fn run_with(
    store: &Arc<dyn Store>,
    ds: &Dataset,
    items: &[DatasetItem],
    score: impl Fn(usize) -> Option<f64>,
) -> String {
    let run = store
        .create_run(
            T,
            NewRun {
                id: None,
                dataset_id: ds.id.clone(),
                dataset_version: ds.version,
                target_type: TargetType::Plugin,
                target_id: "echo".into(),
                scorer_ids: vec!["exact".into()],
                config: json!({}),
                total_items: items.len() as i64,
                repeats: 1,
                parent_run_id: None,
            },
        )
        .await
        .unwrap();
    let run = store
        .claim_run(T, &run.id, "writer", Duration::from_secs(60))
        .await
        .unwrap();
    let now = Utc::now();
    let results: Vec<NewResult> = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| {
            score(i).map(|s| NewResult {
                item_id: item.id.clone(),
                item_index: item.position,
                trial: 0,
                item_version: 1,
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
                target_metadata: None,
                logs: None,
                scores: vec![ScoreRow {
                    scorer_id: "exact".into(),
                    scorer_name: "exact".into(),
                    score: Some(s),
                    reason: None,
                    error: None,
                    metadata: None,
                }],
            })
        })
        .collect();
    for chunk in results.chunks(500) {
        store
            .write_results(&run.id, &Claim::of("writer", &run), chunk.to_vec())
            .await
            .unwrap();
    }
    run.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paged_walk_matches_a_whole_read_across_page_boundaries() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::connect("sqlite::memory:").await.unwrap());
    let ds = store
        .create_dataset(
            T,
            NewDataset {
                name: "walk".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let n = 2_600;
    let new: Vec<NewItem> = (0..n)
        .map(|i| NewItem {
            input: json!(i),
            expected_output: None,
            context: None,
        })
        .collect();
    let items = store.add_items(T, &ds.id, new).await.unwrap();
    let ds = store.get_dataset(T, &ds.id).await.unwrap();
    // A misses every 7th item, B every 5th; B scores every 3rd item lower.
    let score_a = |i: usize| (!i.is_multiple_of(7)).then_some(1.0);
    let score_b =
        |i: usize| (!i.is_multiple_of(5)).then_some(if i.is_multiple_of(3) { 0.0 } else { 1.0 });
    let a = run_with(&store, &ds, &items, score_a).await;
    let b = run_with(&store, &ds, &items, score_b).await;

    let both = |i: &usize| score_a(*i).is_some() && score_b(*i).is_some();
    let want_total = (0..n)
        .filter(|&i| score_a(i).is_some() || score_b(i).is_some())
        .count();
    let want_regressed: Vec<i64> = (0..n)
        .filter(both)
        .filter(|i| score_b(*i) < score_a(*i))
        .map(|i| items[i].position)
        .collect();
    let a_scores: Vec<f64> = (0..n).filter_map(score_a).collect();
    let b_scores: Vec<f64> = (0..n).filter_map(score_b).collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;

    let whole = compare_runs(
        &store,
        T,
        &ds.id,
        &a,
        &b,
        &CompareOptions {
            items: ItemWindow {
                limit: usize::MAX,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(whole.items_total as usize, want_total);
    assert_eq!(whole.items.len(), want_total);
    assert_eq!(whole.regressed_items as usize, want_regressed.len());
    assert_eq!(whole.next_after_index, None);
    let exact = &whole.scorers["exact"];
    assert_eq!(exact.stats_a.score_count as usize, a_scores.len());
    assert_eq!(exact.stats_b.score_count as usize, b_scores.len());
    assert!((exact.stats_a.avg_score.unwrap() - mean(&a_scores)).abs() < 1e-12);
    assert!((exact.stats_b.avg_score.unwrap() - mean(&b_scores)).abs() < 1e-12);
    assert!(whole.has_regression);
    let in_both = whole.items.iter().filter(|i| i.in_both_runs).count();
    assert_eq!(in_both, (0..n).filter(both).count());
    assert!(
        whole
            .items
            .windows(2)
            .all(|w| w[0].item_index < w[1].item_index)
    );

    // Regressed items only, in windows of 100 chained by the cursor.
    let mut walked = Vec::new();
    let mut after = None;
    loop {
        let page = compare_runs(
            &store,
            T,
            &ds.id,
            &a,
            &b,
            &CompareOptions {
                items: ItemWindow {
                    after_index: after,
                    limit: 100,
                    regressed_only: true,
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert!(page.items.len() <= 100);
        assert_eq!(page.regressed_items as usize, want_regressed.len());
        walked.extend(page.items.iter().map(|i| i.item_index));
        match page.next_after_index {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(walked, want_regressed);
}
