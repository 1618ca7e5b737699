//! Runs with repeats: every item is executed once per trial, exactly once
//! each (a resumed run executes only the missing trials, a cancelled one
//! counts the trials it skipped), a re-scoring run
//! grades every stored trial, and the statistics and comparisons are over
//! items (the mean of each item's trials), checked against values computed
//! by hand.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use assay_runner::compare::{CompareOptions, compare_runs};
use assay_runner::stats::summarize_stored;
use assay_runner::{Executor, RunHooks, RunOptions, Scorer, TargetSource};
use assay_store::{Claim, DatasetItem, NewResult, NewRun, Run, RunStatus, ScoreRow, Store};
use chrono::Utc;
use common::*;
use serde_json::json;

fn opts(repeat: u32) -> RunOptions {
    RunOptions {
        max_concurrency: 4,
        repeat,
        ..Default::default()
    }
}

async fn items_of(store: &Arc<dyn Store>, run: &Run) -> Vec<DatasetItem> {
    store
        .items_at_version(TENANT, &run.dataset_id, run.dataset_version, None, 10_000)
        .await
        .unwrap()
}

/// Trial `trial` of `item` with `exact` score `score`.
fn trial(item: &DatasetItem, trial: i64, score: f64) -> NewResult {
    let now = Utc::now();
    NewResult {
        item_id: item.id.clone(),
        item_index: item.position,
        trial,
        item_version: item.version,
        input: item.input.clone(),
        output: Some(item.input.clone()),
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
            score: Some(score),
            reason: None,
            error: None,
            metadata: None,
        }],
    }
}

/// A finished run with three trials of each of its items, scored as
/// `scores[item][trial]`.
async fn finished_run_with_trials(store: &Arc<dyn Store>, run: &Run, scores: &[[f64; 3]]) {
    let items = items_of(store, run).await;
    let claimed = store
        .claim_run(TENANT, &run.id, "writer", Duration::from_secs(60))
        .await
        .unwrap();
    let claim = Claim::of("writer", &claimed);
    let batch: Vec<NewResult> = items
        .iter()
        .zip(scores)
        .flat_map(|(item, s)| (0..3).map(move |t| trial(item, t, s[t as usize])))
        .collect();
    store.write_results(&run.id, &claim, batch).await.unwrap();
    store
        .finish_run(&run.id, &claim, RunStatus::Completed, None)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_trial_runs_once_and_a_resumed_run_runs_only_the_missing_ones() {
    let (store, _dir) = store().await;
    let run = dataset_run_repeated(&store, plain(4), 3).await;
    assert_eq!((run.repeats, run.total_items), (3, 12));
    let items = items_of(&store, &run).await;
    // A process ran some trials and went away: all of item 0, trial 1 of
    // item 1.
    let claimed = store
        .claim_run(TENANT, &run.id, "gone", Duration::from_secs(60))
        .await
        .unwrap();
    let claim = Claim::of("gone", &claimed);
    let done = vec![
        trial(&items[0], 0, 1.0),
        trial(&items[0], 1, 1.0),
        trial(&items[0], 2, 1.0),
        trial(&items[1], 1, 1.0),
    ];
    store.write_results(&run.id, &claim, done).await.unwrap();
    store.release_run(&run.id, &claim).await.unwrap();

    let target = Arc::new(MockTarget::default());
    let scorer: Arc<dyn Scorer> = MockScorer::ok("exact", 0.5);
    let summary = Executor::new(store.clone())
        .with_page_size(2)
        .execute(
            plan(run.clone(), target.clone(), vec![scorer], opts(3)),
            RunHooks::default(),
        )
        .await
        .unwrap();
    assert_eq!(summary.status, RunStatus::Completed);
    assert_eq!(
        target.calls.load(Ordering::SeqCst),
        8,
        "12 trials, 4 stored"
    );
    let attempts = target.attempts.lock().unwrap().clone();
    let calls_of = |i: usize| attempts.get(&items[i].id).copied().unwrap_or(0);
    assert_eq!(
        [calls_of(0), calls_of(1), calls_of(2), calls_of(3)],
        [0, 2, 3, 3]
    );

    let results = all_results(&store, &run.id).await;
    let pairs: Vec<(i64, i64)> = results.iter().map(|r| (r.item_index, r.trial)).collect();
    let want: Vec<(i64, i64)> = (0..4).flat_map(|i| (0..3).map(move |t| (i, t))).collect();
    assert_eq!(
        pairs, want,
        "every trial exactly once, in item then trial order"
    );
    let done = store.get_run(TENANT, &run.id).await.unwrap();
    assert_eq!(
        (done.succeeded_count, done.failed_count, done.skipped_count),
        (12, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rescore_of_a_run_with_repeats_grades_every_trial() {
    let (store, _dir) = store().await;
    let parent = dataset_run_repeated(&store, plain(3), 2).await;
    let target = Arc::new(MockTarget::default());
    Executor::new(store.clone())
        .execute(
            plan(parent.clone(), target.clone(), vec![], opts(2)),
            RunHooks::default(),
        )
        .await
        .unwrap();
    let child = store
        .create_run(
            TENANT,
            NewRun {
                id: None,
                dataset_id: parent.dataset_id.clone(),
                dataset_version: parent.dataset_version,
                target_type: parent.target_type,
                target_id: parent.target_id.clone(),
                scorer_ids: vec!["new".into()],
                config: json!({}),
                total_items: parent.total_items,
                repeats: parent.repeats,
                parent_run_id: Some(parent.id.clone()),
            },
        )
        .await
        .unwrap();
    let scorer = MockScorer::ok("new", 0.25);
    let summary = Executor::new(store.clone())
        .execute(
            assay_runner::RunPlan {
                tenant: TENANT.into(),
                run: child.clone(),
                target: TargetSource::Recorded {
                    parent_run_id: parent.id.clone(),
                },
                scorers: vec![scorer.clone()],
                options: opts(2),
                claimed: false,
            },
            RunHooks::default(),
        )
        .await
        .unwrap();
    assert_eq!(summary.status, RunStatus::Completed);
    assert_eq!(
        target.calls.load(Ordering::SeqCst),
        6,
        "only the parent called the target"
    );
    assert_eq!(
        scorer.calls.load(Ordering::SeqCst),
        6,
        "every stored trial graded"
    );
    let graded = all_results(&store, &child.id).await;
    let pairs: Vec<(i64, i64)> = graded.iter().map(|r| (r.item_index, r.trial)).collect();
    assert_eq!(pairs, [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]);
    assert!(graded.iter().all(|r| r.scores[0].score == Some(0.25)));
}

/// Item means 0.5, 0.7, 0.9 and 0.3 (each of three trials).
const A: [[f64; 3]; 4] = [
    [0.0, 0.5, 1.0],
    [0.6, 0.7, 0.8],
    [1.0, 0.8, 0.9],
    [0.3, 0.3, 0.3],
];
/// Item means 0.7, 0.8, 1.0 and 0.6: A plus 0.2, 0.1, 0.1, 0.3.
const B: [[f64; 3]; 4] = [
    [0.6, 0.7, 0.8],
    [0.8, 0.8, 0.8],
    [1.0, 1.0, 1.0],
    [0.4, 0.6, 0.8],
];
/// Item means 0.7, 0.6, 1.0 and 0.2: A plus 0.2, -0.1, 0.1, -0.1.
const C: [[f64; 3]; 4] = [
    [0.7, 0.7, 0.7],
    [0.5, 0.6, 0.7],
    [1.0, 1.0, 1.0],
    [0.1, 0.2, 0.3],
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_of_a_stored_run_is_over_item_means() {
    let (store, _dir) = store().await;
    let run = dataset_run_repeated(&store, plain(4), 3).await;
    finished_run_with_trials(&store, &run, &A).await;
    let run = store.get_run(TENANT, &run.id).await.unwrap();
    let stats = summarize_stored(&store, TENANT, &run, 0.5).await.unwrap();
    // By hand: mean 0.6; sd over the four item means √(0.2 / 3); SE sd / 2
    // = 0.129099; 95% interval 0.6 ± 3.182446 · 0.129099 = [0.189154,
    // 1.010846].
    assert_eq!((stats.repeats, stats.total_items), (3, 12));
    let s = &stats.scorers[0];
    assert_eq!((s.item_count, s.scored_count), (4, 12));
    assert!((s.mean.unwrap() - 0.6).abs() < 1e-12);
    assert!((s.standard_error.unwrap() - 0.129_099_444_9).abs() < 1e-9);
    let [lo, hi] = s.ci95.unwrap();
    assert!(
        (lo - 0.189_154).abs() < 1e-5 && (hi - 1.010_846).abs() < 1e-5,
        "{lo} {hi}"
    );
    let json = serde_json::to_value(&stats).unwrap();
    assert_eq!(json["repeats"], 3);
    assert_eq!(json["scorers"][0]["itemCount"], 4);
    assert!(json["scorers"][0]["ci95"].is_array());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_tests_the_per_item_differences() {
    let (store, _dir) = store().await;
    let a = dataset_run_repeated(&store, plain(4), 3).await;
    finished_run_with_trials(&store, &a, &A).await;
    let new_run = |store: Arc<dyn Store>| {
        let a = a.clone();
        async move {
            store
                .create_run(
                    TENANT,
                    NewRun {
                        id: None,
                        dataset_id: a.dataset_id.clone(),
                        dataset_version: a.dataset_version,
                        target_type: a.target_type,
                        target_id: a.target_id.clone(),
                        scorer_ids: vec!["exact".into()],
                        config: json!({}),
                        total_items: 12,
                        repeats: 3,
                        parent_run_id: None,
                    },
                )
                .await
                .unwrap()
        }
    };
    let b = new_run(store.clone()).await;
    finished_run_with_trials(&store, &b, &B).await;
    let c = new_run(store.clone()).await;
    finished_run_with_trials(&store, &c, &C).await;

    // A vs B: differences 0.2, 0.1, 0.1, 0.3 (by hand: mean 0.175, SE
    // √(0.0275 / 3) / 2 = 0.047871, t = 3.655631 with 3 degrees of
    // freedom, two-sided p = 0.03535): significant.
    let ab = compare_runs(
        &store,
        TENANT,
        &a.dataset_id,
        &a.id,
        &b.id,
        &CompareOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(ab.items_total, 4);
    let means: Vec<(Option<f64>, Option<f64>)> = ab
        .items
        .iter()
        .map(|i| (i.scores_a["exact"], i.scores_b["exact"]))
        .collect();
    for ((got_a, got_b), (want_a, want_b)) in
        means
            .iter()
            .zip([(0.5, 0.7), (0.7, 0.8), (0.9, 1.0), (0.3, 0.6)])
    {
        assert!((got_a.unwrap() - want_a).abs() < 1e-12 && (got_b.unwrap() - want_b).abs() < 1e-12);
    }
    let test = ab.scorers["exact"].significance.expect("a paired test");
    assert_eq!((test.pairs, test.degrees_of_freedom), (4, 3));
    assert!((test.mean_difference - 0.175).abs() < 1e-12);
    assert!((test.t - 3.655_630_775).abs() < 1e-6, "{}", test.t);
    assert!((test.p_value - 0.035_35).abs() < 1e-4, "{}", test.p_value);
    assert!(test.significant);

    // A vs C: differences 0.2, -0.1, 0.1, -0.1 (t = 1/3, p = 0.7608): the
    // means differ by 0.025, which is not significant.
    let ac = compare_runs(
        &store,
        TENANT,
        &a.dataset_id,
        &a.id,
        &c.id,
        &CompareOptions::default(),
    )
    .await
    .unwrap();
    let test = ac.scorers["exact"].significance.expect("a paired test");
    assert!((test.t - 1.0 / 3.0).abs() < 1e-9);
    assert!((test.p_value - 0.760_82).abs() < 1e-4);
    assert!(!test.significant);
    let json = serde_json::to_value(&ac).unwrap();
    assert_eq!(
        json["scorers"]["exact"]["significance"]["significant"],
        false
    );
}

/// 400 items of three trials: the outlines of a run span two pages of the
/// walk (1000 each), and the first page ends inside an item's trials. The
/// item must still be compared once, with the mean of all its trials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_whose_trials_straddle_a_page_is_compared_whole() {
    let (store, _dir) = store().await;
    let n = 400;
    let a = dataset_run_repeated(&store, plain(n), 3).await;
    // A: every item 0.4, 0.5, 0.6 (mean 0.5). B: the same, shifted by
    // 0.1 on even items and 0.2 on odd ones.
    let scores_a = vec![[0.4, 0.5, 0.6]; n];
    let scores_b: Vec<[f64; 3]> = (0..n)
        .map(|i| {
            let d = if i % 2 == 0 { 0.1 } else { 0.2 };
            [0.4 + d, 0.5 + d, 0.6 + d]
        })
        .collect();
    finished_run_with_trials(&store, &a, &scores_a).await;
    let b = store
        .create_run(
            TENANT,
            NewRun {
                id: None,
                dataset_id: a.dataset_id.clone(),
                dataset_version: a.dataset_version,
                target_type: a.target_type,
                target_id: a.target_id.clone(),
                scorer_ids: vec![],
                config: json!({}),
                total_items: a.total_items,
                repeats: 3,
                parent_run_id: None,
            },
        )
        .await
        .unwrap();
    finished_run_with_trials(&store, &b, &scores_b).await;
    let mut seen: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    let mut options = CompareOptions::default();
    options.items.limit = 10_000;
    let c = compare_runs(&store, TENANT, &a.dataset_id, &a.id, &b.id, &options)
        .await
        .unwrap();
    assert_eq!(c.items_total, n as u64);
    for i in &c.items {
        let pair = (i.scores_a["exact"].unwrap(), i.scores_b["exact"].unwrap());
        assert!(
            seen.insert(i.item_index, pair).is_none(),
            "item {} twice",
            i.item_index
        );
    }
    assert_eq!(seen.len(), n);
    for (index, (x, y)) in &seen {
        let d = if index % 2 == 0 { 0.1 } else { 0.2 };
        assert!(
            (x - 0.5).abs() < 1e-9 && (y - x - d).abs() < 1e-9,
            "item {index}: {x} {y}"
        );
    }
    // Differences: 200 of 0.1, 200 of 0.2. Mean 0.15; sum of squared
    // deviations 400 · 0.05² = 1; SE = √(1 / 399) / 20 = 0.0025031.
    let test = c.scorers["exact"].significance.unwrap();
    assert_eq!(test.pairs, n as u64);
    assert!((test.mean_difference - 0.15).abs() < 1e-9);
    assert!((test.standard_error - (1.0f64 / 399.0).sqrt() / 20.0).abs() < 1e-9);
    assert!(test.significant);
    assert_eq!(
        c.scorers["exact"].stats_a.score_count,
        3 * n as u64,
        "tallies count trials"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_with_repeats_counts_the_trials_it_skipped() {
    let (store, _dir) = store().await;
    let inputs = (0..4).map(|i| json!({"n": i, "delayMs": 30})).collect();
    let run = dataset_run_repeated(&store, inputs, 5).await;
    let cancel = tokio_util::sync::CancellationToken::new();
    let finished = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (stop, count) = (cancel.clone(), finished.clone());
    let hooks = RunHooks {
        on_item_complete: Some(assay_runner::on_item_complete(move |_, _| {
            if count.fetch_add(1, Ordering::SeqCst) + 1 == 3 {
                stop.cancel();
            }
            async { Ok(()) }
        })),
        cancel,
        ..Default::default()
    };
    let summary = Executor::new(store.clone())
        .execute(
            plan(
                run.clone(),
                Arc::new(MockTarget::default()),
                vec![],
                opts(5),
            ),
            hooks,
        )
        .await
        .unwrap();
    assert_eq!(summary.status, RunStatus::Cancelled);
    let done = store.get_run(TENANT, &run.id).await.unwrap();
    let results = all_results(&store, &run.id).await;
    let pairs: std::collections::BTreeSet<(i64, i64)> =
        results.iter().map(|r| (r.item_index, r.trial)).collect();
    assert_eq!(pairs.len(), results.len(), "no trial twice");
    assert_eq!(done.succeeded_count as usize, results.len());
    assert!(
        results.len() < 20,
        "cancelled before the end: {}",
        results.len()
    );
    assert_eq!(
        done.skipped_count,
        20 - done.succeeded_count - done.failed_count
    );
}
