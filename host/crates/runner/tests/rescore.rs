//! Re-scoring in the executor: a run whose outputs come from its parent's
//! stored results (`TargetSource::Recorded`) grades them with its own
//! scorers, copies the parent's failures, skips the items the parent never
//! ran, and resumes like any run.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use assay_runner::{Executor, RunHooks, RunOptions, Scorer, TargetSource, on_item_complete};
use assay_store::{NewRun, Run, RunStatus, Store};
use common::*;
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn opts(max_concurrency: usize) -> RunOptions {
    RunOptions {
        max_concurrency,
        ..Default::default()
    }
}

/// A pending run re-scoring `parent` with the scorers `scorer_ids`.
async fn child_of(store: &Arc<dyn Store>, parent: &Run, scorer_ids: &[&str]) -> Run {
    store
        .create_run(
            TENANT,
            NewRun {
                id: None,
                dataset_id: parent.dataset_id.clone(),
                dataset_version: parent.dataset_version,
                target_type: parent.target_type,
                target_id: parent.target_id.clone(),
                scorer_ids: scorer_ids.iter().map(|s| s.to_string()).collect(),
                config: json!({}),
                total_items: parent.total_items,
                repeats: 1,
                parent_run_id: Some(parent.id.clone()),
            },
        )
        .await
        .unwrap()
}

fn recorded(parent: &Run) -> TargetSource {
    TargetSource::Recorded {
        parent_run_id: parent.id.clone(),
    }
}

/// 300 items (more than one page of the feed), every 7th failing.
async fn finished_parent(store: &Arc<dyn Store>, target: &Arc<MockTarget>) -> Run {
    let inputs = (0..300)
        .map(|i| match i % 7 {
            3 => json!({"n": i, "fail": "boom"}),
            _ => json!({"n": i}),
        })
        .collect();
    let run = dataset_run(store, inputs).await;
    let scorer: Arc<dyn Scorer> = MockScorer::ok("old", 1.0);
    let summary = Executor::new(store.clone())
        .execute(
            plan(run.clone(), target.clone(), vec![scorer], opts(16)),
            RunHooks::default(),
        )
        .await
        .unwrap();
    assert_eq!(summary.status, RunStatus::Completed);
    store.get_run(TENANT, &run.id).await.unwrap()
}

#[tokio::test]
async fn rescore_grades_the_parents_outputs_and_copies_its_failures() {
    let (store, _dir) = store().await;
    let target = Arc::new(MockTarget::default());
    let parent = finished_parent(&store, &target).await;
    assert_eq!(target.calls.load(Ordering::SeqCst), 300);
    let failed = (0..300).filter(|i| i % 7 == 3).count() as i64;
    assert_eq!(parent.failed_count, failed);

    let scorer = MockScorer::ok("new", 0.25);
    let child = child_of(&store, &parent, &["new"]).await;
    let mut p = plan(child.clone(), target.clone(), vec![scorer.clone()], opts(8));
    p.target = recorded(&parent);
    let calls_before = target.calls.load(Ordering::SeqCst);
    let scored_before = scorer.calls.load(Ordering::SeqCst);
    let summary = Executor::new(store.clone())
        .with_page_size(64)
        .execute(p, RunHooks::default())
        .await
        .unwrap();
    assert_eq!(summary.status, RunStatus::Completed);
    assert_eq!(target.calls.load(Ordering::SeqCst), calls_before);
    // Only successful outputs are graded.
    assert_eq!(
        scorer.calls.load(Ordering::SeqCst) - scored_before,
        (300 - failed) as usize
    );

    let row = store.get_run(TENANT, &child.id).await.unwrap();
    assert_eq!(row.parent_run_id.as_deref(), Some(parent.id.as_str()));
    assert_eq!(row.succeeded_count, 300 - failed);
    assert_eq!(row.failed_count, failed);
    assert_eq!(row.skipped_count, 0);

    let before = all_results(&store, &parent.id).await;
    let after = all_results(&store, &child.id).await;
    assert_eq!(before.len(), 300);
    assert_eq!(after.len(), 300);
    for (a, b) in before.iter().zip(&after) {
        assert_eq!(a.item_id, b.item_id);
        assert_eq!(a.item_index, b.item_index);
        assert_eq!(a.output, b.output, "item {}", a.item_index);
        assert_eq!(a.error, b.error);
        assert_eq!(a.error_kind, b.error_kind);
        assert_eq!(a.latency, b.latency);
        assert_eq!(a.trace_id, b.trace_id);
        assert_eq!(a.target_metadata, b.target_metadata);
        match &b.error {
            Some(_) => assert!(b.scores.is_empty()),
            None => {
                assert_eq!(b.scores.len(), 1);
                assert_eq!(b.scores[0].scorer_id, "new");
                assert_eq!(b.scores[0].score, Some(0.25));
            }
        }
    }
    // The parent's own scores are untouched.
    assert!(
        before
            .iter()
            .filter(|r| r.error.is_none())
            .all(|r| r.scores.len() == 1 && r.scores[0].scorer_id == "old")
    );
}

#[tokio::test]
async fn items_the_parent_never_ran_are_skipped() {
    let (store, _dir) = store().await;
    let inputs = (0..10).map(|i| json!({"n": i, "delayMs": 150})).collect();
    let parent = dataset_run(&store, inputs).await;
    let cancel = CancellationToken::new();
    let canceller = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        canceller.cancel();
    });
    let target = Arc::new(MockTarget::default());
    Executor::new(store.clone())
        .execute(
            plan(parent.clone(), target.clone(), vec![], opts(2)),
            RunHooks {
                cancel,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let parent = store.get_run(TENANT, &parent.id).await.unwrap();
    assert_eq!(parent.status, RunStatus::Cancelled);
    let done = parent.succeeded_count;
    assert!((1..10).contains(&done), "{done} items done");

    let child = child_of(&store, &parent, &["new"]).await;
    let mut p = plan(
        child.clone(),
        target.clone(),
        vec![MockScorer::ok("new", 1.0)],
        opts(4),
    );
    p.target = recorded(&parent);
    let summary = Executor::new(store.clone())
        .execute(p, RunHooks::default())
        .await
        .unwrap();
    assert_eq!(summary.status, RunStatus::Completed);
    let row = store.get_run(TENANT, &child.id).await.unwrap();
    assert_eq!(row.succeeded_count, done);
    assert_eq!(row.failed_count, 0);
    assert_eq!(row.skipped_count, 10 - done);
    let parent_ids: Vec<String> = all_results(&store, &parent.id)
        .await
        .into_iter()
        .map(|r| r.item_id)
        .collect();
    let child_ids: Vec<String> = all_results(&store, &child.id)
        .await
        .into_iter()
        .map(|r| r.item_id)
        .collect();
    assert_eq!(parent_ids, child_ids);
}

#[tokio::test]
async fn an_interrupted_rescore_resumes_where_it_stopped() {
    let (store, _dir) = store().await;
    let target = Arc::new(MockTarget::default());
    let parent = finished_parent(&store, &target).await;
    let child = child_of(&store, &parent, &["new"]).await;

    // First process: drains (shutdown) after 40 items; the run stays
    // resumable.
    let drain = CancellationToken::new();
    let seen = Arc::new(AtomicUsize::new(0));
    let (d, s) = (drain.clone(), seen.clone());
    let cb = on_item_complete(move |_, _| {
        let (d, s) = (d.clone(), s.clone());
        async move {
            if s.fetch_add(1, Ordering::SeqCst) + 1 == 40 {
                d.cancel();
            }
            Ok(())
        }
    });
    let first = MockScorer::ok("new", 0.5);
    let mut p = plan(child.clone(), target.clone(), vec![first.clone()], opts(4));
    p.target = recorded(&parent);
    let summary = Executor::new(store.clone())
        .with_page_size(32)
        .execute(
            p,
            RunHooks {
                on_item_complete: Some(cb),
                drain,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(summary.interrupted);
    let stored_first = all_results(&store, &child.id).await.len();
    assert!((40..300).contains(&stored_first), "{stored_first}");

    // Second process: the rest, each item once.
    let second = MockScorer::ok("new", 0.5);
    let mut p = plan(child.clone(), target.clone(), vec![second.clone()], opts(4));
    p.target = recorded(&parent);
    let calls_before = target.calls.load(Ordering::SeqCst);
    let summary = Executor::new(store.clone())
        .with_page_size(32)
        .execute(p, RunHooks::default())
        .await
        .unwrap();
    assert_eq!(summary.status, RunStatus::Completed);
    assert_eq!(target.calls.load(Ordering::SeqCst), calls_before);
    let results = all_results(&store, &child.id).await;
    assert_eq!(results.len(), 300);
    let mut ids: Vec<&str> = results.iter().map(|r| r.item_id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 300);
    let graded = results.iter().filter(|r| r.error.is_none()).count();
    assert_eq!(
        first.calls.load(Ordering::SeqCst) + second.calls.load(Ordering::SeqCst),
        graded
    );
}
