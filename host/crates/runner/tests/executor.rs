//! The executor's behaviour: the per-item completion callback (once per
//! item, with its dataset index; results retained or not; failures passed
//! on; a failing callback is not fatal; an awaited callback slows the run;
//! cancel; results written behind the next items) and the run lifecycle
//! described in `docs/runs.md`.

mod common;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assay_plugin_host::{CallFailure, PluginItem, ScoreOutcome};
use assay_runner::{
    Executor, ItemWithScores, ResultSink, RunHooks, RunOptions, Scorer, on_item_complete,
};
use assay_store::{Claim, NewResult, Page, RunStatus, Store, StoreError, WriteOutcome};
use async_trait::async_trait;
use common::*;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

type Seen = Arc<Mutex<Vec<(ItemWithScores, i64)>>>;

fn collecting() -> (Seen, assay_runner::ItemCallback) {
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let cb = on_item_complete(move |item, index| {
        let sink = sink.clone();
        async move {
            sink.lock().unwrap().push((item, index));
            Ok(())
        }
    });
    (seen, cb)
}

fn opts(max_concurrency: usize) -> RunOptions {
    RunOptions {
        max_concurrency,
        ..Default::default()
    }
}

#[tokio::test]
async fn callback_fires_once_per_item_with_its_dataset_index() {
    let (store, _dir) = store().await;
    let run = dataset_run(&store, plain(5)).await;
    let (seen, cb) = collecting();
    let summary = Executor::new(store.clone())
        .execute(
            plan(run, Arc::new(MockTarget::default()), vec![], opts(5)),
            RunHooks {
                on_item_complete: Some(cb),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(summary.status, RunStatus::Completed);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 5);
    let mut indexes: Vec<i64> = seen.iter().map(|(_, i)| *i).collect();
    indexes.sort();
    assert_eq!(indexes, vec![0, 1, 2, 3, 4]);
    for (item, index) in seen.iter() {
        assert_eq!(item.index, *index);
        assert_eq!(item.result.input["n"], json!(index));
        assert_eq!(item.result.output.as_ref().unwrap()["n"], json!(index));
    }
}

#[tokio::test]
async fn callback_defaults_retain_results_to_false() {
    let (store, _dir) = store().await;
    let run = dataset_run(&store, plain(5)).await;
    let (seen, cb) = collecting();
    let summary = Executor::new(store.clone())
        .execute(
            plan(run, Arc::new(MockTarget::default()), vec![], opts(2)),
            RunHooks {
                on_item_complete: Some(cb),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(summary.results.is_empty());
    assert_eq!(seen.lock().unwrap().len(), 5);
    assert_eq!(summary.succeeded_count, 5);
}

#[tokio::test]
async fn explicit_retain_with_callback_gives_both() {
    let (store, _dir) = store().await;
    let run = dataset_run(&store, plain(3)).await;
    let (seen, cb) = collecting();
    let summary = Executor::new(store.clone())
        .execute(
            plan(run, Arc::new(MockTarget::default()), vec![], opts(3)),
            RunHooks {
                on_item_complete: Some(cb),
                retain_results: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(summary.results.len(), 3);
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn callback_receives_successes_and_failures() {
    let (store, _dir) = store().await;
    let run = dataset_run(
        &store,
        vec![
            json!({"n": 0}),
            json!({"n": 1, "fail": "boom"}),
            json!({"n": 2}),
        ],
    )
    .await;
    let (seen, cb) = collecting();
    let summary = Executor::new(store.clone())
        .execute(
            plan(run, Arc::new(MockTarget::default()), vec![], opts(3)),
            RunHooks {
                on_item_complete: Some(cb),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    let failures: Vec<_> = seen.iter().filter(|(i, _)| i.is_failure()).collect();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].1, 1);
    assert!(
        failures[0]
            .0
            .result
            .error
            .as_deref()
            .unwrap()
            .contains("boom")
    );
    assert_eq!(summary.status, RunStatus::Completed);
    assert!(summary.completed_with_errors);
    assert_eq!((summary.succeeded_count, summary.failed_count), (2, 1));
}

#[tokio::test]
async fn a_failing_callback_is_not_fatal() {
    let (store, _dir) = store().await;
    let run = dataset_run(&store, plain(3)).await;
    let cb = on_item_complete(|_, _| async { Err("callback exploded".into()) });
    let summary = Executor::new(store.clone())
        .execute(
            plan(run, Arc::new(MockTarget::default()), vec![], opts(3)),
            RunHooks {
                on_item_complete: Some(cb),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(summary.status, RunStatus::Completed);
    assert_eq!(summary.succeeded_count, 3);
}

#[tokio::test]
async fn async_callback_is_awaited_and_slows_the_run() {
    let (store, _dir) = store().await;
    // More items than may wait for their callback at once (a full write
    // batch, 64, with one item in flight).
    let run = dataset_run(&store, plain(130)).await;
    let now = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (inside, peak) = (now.clone(), most.clone());
    let cb = on_item_complete(move |_, _| {
        let (inside, peak) = (inside.clone(), peak.clone());
        async move {
            let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(n, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            inside.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        }
    });
    let started = Instant::now();
    let summary = Executor::new(store.clone())
        .execute(
            plan(run, Arc::new(MockTarget::default()), vec![], opts(1)),
            RunHooks {
                on_item_complete: Some(cb),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(summary.succeeded_count, 130);
    // Callbacks overlap (the items behind go on computing), but never more
    // than the places of items completing: a slow consumer holds the run
    // back, three waves of 50 ms for 130 items, instead of 130 results
    // piling up in memory.
    let most = most.load(Ordering::SeqCst);
    assert!((2..=64).contains(&most), "{most} callbacks at once");
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "the run did not wait for its callbacks: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn cancel_calls_back_only_for_finished_items_and_finalizes_consistently() {
    let (store, _dir) = store().await;
    let inputs = (0..10).map(|i| json!({"n": i, "delayMs": 200})).collect();
    let run = dataset_run(&store, inputs).await;
    let run_id = run.id.clone();
    let (seen, cb) = collecting();
    let cancel = CancellationToken::new();
    let canceller = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        canceller.cancel();
    });
    let target = Arc::new(MockTarget::default());
    let summary = Executor::new(store.clone())
        .execute(
            plan(run, target.clone(), vec![], opts(2)),
            RunHooks {
                on_item_complete: Some(cb),
                cancel,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let called = seen.lock().unwrap().len();
    assert!((1..10).contains(&called), "callback count {called}");
    assert_eq!(summary.status, RunStatus::Cancelled);
    assert_eq!(summary.succeeded_count as usize, called);
    assert_eq!(
        summary.succeeded_count + summary.failed_count + summary.skipped_count,
        10
    );
    // Nothing is written after finalization: the stored results match the
    // callbacks, and stay that way.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stored_count(&store, &run_id).await as usize, called);
    let row = store.get_run(TENANT, &run_id).await.unwrap();
    assert_eq!(row.status, RunStatus::Cancelled);
    assert_eq!(row.succeeded_count as usize, called);
    assert_eq!(row.skipped_count, 10 - called as i64);
    assert!(row.completed_at.is_some());
}

#[tokio::test]
async fn run_where_every_item_fails_is_failed() {
    let (store, _dir) = store().await;
    let inputs = (0..4).map(|i| json!({"n": i, "fail": "down"})).collect();
    let run = dataset_run(&store, inputs).await;
    let summary = Executor::new(store.clone())
        .execute(
            plan(run, Arc::new(MockTarget::default()), vec![], opts(4)),
            RunHooks::default(),
        )
        .await
        .unwrap();
    assert_eq!(summary.status, RunStatus::Failed);
    assert!(!summary.completed_with_errors);
    assert_eq!(summary.failed_count, 4);
    assert!(
        summary
            .results
            .iter()
            .all(|r| r.result.error.as_deref() == Some("target failed: down"))
    );
}

#[tokio::test]
async fn retries_transient_errors_only_and_records_retry_count() {
    let (store, _dir) = store().await;
    let run = dataset_run(
        &store,
        vec![
            json!({"n": 0, "failTimes": 2}),
            json!({"n": 1, "fail": "invalid"}),
            json!({"n": 2, "fail": "transient"}),
        ],
    )
    .await;
    let target = Arc::new(MockTarget::default());
    let options = RunOptions {
        max_retries: 3,
        retry_delay: Duration::from_millis(5),
        ..opts(3)
    };
    let summary = Executor::new(store.clone())
        .execute(
            plan(run, target.clone(), vec![], options),
            RunHooks::default(),
        )
        .await
        .unwrap();
    let r = &summary.results;
    assert_eq!(r.len(), 3);
    assert!(r[0].result.error.is_none(), "flaky item recovers");
    assert_eq!(r[0].result.retry_count, 2);
    assert_eq!(r[1].result.retry_count, 0, "invalid input is never retried");
    assert_eq!(r[1].result.error_kind.as_deref(), Some("invalid-input"));
    assert_eq!(
        r[2].result.retry_count, 3,
        "transient retried up to maxRetries"
    );
    assert_eq!(r[2].result.error_kind.as_deref(), Some("transient"));
    assert_eq!(target.calls.load(Ordering::SeqCst), 3 + 1 + 4);
}

#[tokio::test]
async fn cancel_during_backoff_stops_at_once() {
    let (store, _dir) = store().await;
    let run = dataset_run(&store, vec![json!({"n": 0, "fail": "transient"})]).await;
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        c.cancel();
    });
    let options = RunOptions {
        max_retries: 5,
        retry_delay: Duration::from_secs(20),
        ..opts(1)
    };
    let started = Instant::now();
    let summary = Executor::new(store.clone())
        .execute(
            plan(run, Arc::new(MockTarget::default()), vec![], options),
            RunHooks {
                cancel,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited out the backoff"
    );
    assert_eq!(summary.status, RunStatus::Cancelled);
    assert_eq!(summary.skipped_count, 1);
}

#[tokio::test]
async fn item_timeout_fails_a_hanging_item_and_the_run_goes_on() {
    let (store, _dir) = store().await;
    let run = dataset_run(
        &store,
        vec![json!({"n": 0, "delayMs": 60_000}), json!({"n": 1})],
    )
    .await;
    let options = RunOptions {
        item_timeout: Some(Duration::from_millis(200)),
        ..opts(2)
    };
    let summary = Executor::new(store.clone())
        .execute(
            plan(run, Arc::new(MockTarget::default()), vec![], options),
            RunHooks::default(),
        )
        .await
        .unwrap();
    assert_eq!(summary.status, RunStatus::Completed);
    let hung = &summary.results[0].result;
    assert_eq!(hung.error_kind.as_deref(), Some("timeout"));
    assert!(
        hung.error.as_deref().unwrap().contains("time"),
        "{:?}",
        hung.error
    );
    assert!(summary.results[1].result.error.is_none());
}

/// A scorer that waits until all of its siblings are running.
struct BarrierScorer {
    id: &'static str,
    barrier: Arc<tokio::sync::Barrier>,
}

#[async_trait]
impl Scorer for BarrierScorer {
    fn id(&self) -> &str {
        self.id
    }
    fn name(&self) -> &str {
        self.id
    }
    async fn score(&self, _: &PluginItem, _: Option<&Value>) -> Result<ScoreOutcome, CallFailure> {
        self.barrier.wait().await;
        Ok(ScoreOutcome {
            value: 1.0,
            reason: None,
            metadata: None,
            logs: Default::default(),
            network: Default::default(),
        })
    }
}

#[tokio::test]
async fn scorers_of_one_item_run_in_parallel() {
    let (store, _dir) = store().await;
    let run = dataset_run(&store, plain(1)).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(3));
    let scorers: Vec<Arc<dyn Scorer>> = ["a", "b", "c"]
        .into_iter()
        .map(|id| {
            Arc::new(BarrierScorer {
                id,
                barrier: barrier.clone(),
            }) as Arc<dyn Scorer>
        })
        .collect();
    let summary = tokio::time::timeout(
        Duration::from_secs(10),
        Executor::new(store.clone()).execute(
            plan(run, Arc::new(MockTarget::default()), scorers, opts(1)),
            RunHooks::default(),
        ),
    )
    .await
    .expect("scorers ran one after another (the barrier never opened)")
    .unwrap();
    assert_eq!(summary.results[0].result.scores.len(), 3);
}

#[tokio::test]
async fn a_failing_scorer_gives_null_with_error_and_others_are_unaffected() {
    let (store, _dir) = store().await;
    let run = dataset_run(&store, plain(2)).await;
    let run_id = run.id.clone();
    let scorers: Vec<Arc<dyn Scorer>> =
        vec![MockScorer::ok("good", 0.75), MockScorer::failing("bad")];
    let summary = Executor::new(store.clone())
        .execute(
            plan(run, Arc::new(MockTarget::default()), scorers, opts(2)),
            RunHooks::default(),
        )
        .await
        .unwrap();
    assert_eq!(summary.succeeded_count, 2);
    let stored = store
        .list_results(
            TENANT,
            &run_id,
            Page {
                page: 0,
                per_page: 10,
            },
        )
        .await
        .unwrap();
    for r in &stored.items {
        let good = r.scores.iter().find(|s| s.scorer_id == "good").unwrap();
        let bad = r.scores.iter().find(|s| s.scorer_id == "bad").unwrap();
        assert_eq!(good.score, Some(0.75));
        assert_eq!(bad.score, None);
        assert!(bad.error.as_deref().unwrap().contains("scorer exploded"));
    }
}

#[tokio::test]
async fn failed_items_are_not_scored() {
    let (store, _dir) = store().await;
    let run = dataset_run(&store, vec![json!({"n": 0, "fail": "x"})]).await;
    let scorer = MockScorer::ok("s", 1.0);
    let summary = Executor::new(store.clone())
        .execute(
            plan(
                run,
                Arc::new(MockTarget::default()),
                vec![scorer.clone()],
                opts(1),
            ),
            RunHooks::default(),
        )
        .await
        .unwrap();
    assert!(summary.results[0].result.scores.is_empty());
    assert_eq!(scorer.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn max_concurrency_is_respected_and_used() {
    let (store, _dir) = store().await;
    let inputs = (0..20).map(|i| json!({"n": i, "delayMs": 20})).collect();
    let run = dataset_run(&store, inputs).await;
    let target = Arc::new(MockTarget::default());
    Executor::new(store.clone())
        .execute(
            plan(run, target.clone(), vec![], opts(3)),
            RunHooks::default(),
        )
        .await
        .unwrap();
    assert_eq!(target.max_in_flight.load(Ordering::SeqCst), 3);
}

/// Calls that only compute pass the process's small call gate; calls that
/// wait (a network target) do not, so they keep every item slot busy.
#[tokio::test]
async fn cpu_bound_calls_pass_the_call_gate_and_waiting_calls_do_not() {
    let (store, _dir) = store().await;
    let executor = Executor::new(store.clone()).with_call_slots(2);
    for (cpu_bound, expected) in [(true, 2), (false, 8)] {
        let inputs = (0..16).map(|i| json!({"n": i, "delayMs": 20})).collect();
        let run = dataset_run(&store, inputs).await;
        let target = Arc::new(MockTarget {
            cpu_bound,
            ..MockTarget::default()
        });
        let summary = executor
            .execute(
                plan(run, target.clone(), vec![], opts(8)),
                RunHooks::default(),
            )
            .await
            .unwrap();
        assert_eq!(summary.succeeded_count, 16);
        assert_eq!(
            target.max_in_flight.load(Ordering::SeqCst),
            expected,
            "cpu_bound: {cpu_bound}"
        );
    }
}

/// A 429 with `Retry-After` makes the retry wait that long, not the
/// (shorter) backoff.
#[tokio::test]
async fn a_retry_waits_as_long_as_retry_after_asks() {
    let (store, _dir) = store().await;
    let run = dataset_run(&store, vec![json!({"n": 0, "retryAfterMs": 300})]).await;
    let target = Arc::new(MockTarget::default());
    let options = RunOptions {
        max_concurrency: 1,
        max_retries: 3,
        retry_delay: Duration::from_millis(1),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let summary = Executor::new(store.clone())
        .execute(
            plan(run, target.clone(), vec![], options),
            RunHooks::default(),
        )
        .await
        .unwrap();
    assert_eq!(summary.succeeded_count, 1);
    assert_eq!(target.calls.load(Ordering::SeqCst), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "retried after {:?}",
        started.elapsed()
    );
}

/// Against an upstream that takes 4 calls at once and answers 429 above
/// that, a run allowed 32 in flight backs off to about the upstream's
/// capacity instead of spending most calls on 429s, and every item still
/// succeeds.
#[tokio::test]
async fn the_in_flight_limit_backs_off_when_the_upstream_throttles() {
    let (store, _dir) = store().await;
    let items = 300;
    let inputs = (0..items).map(|i| json!({"n": i, "delayMs": 5})).collect();
    let run = dataset_run(&store, inputs).await;
    let target = Arc::new(MockTarget {
        capacity: Some(4),
        ..MockTarget::default()
    });
    let options = RunOptions {
        max_concurrency: 32,
        max_retries: 100,
        retry_delay: Duration::from_millis(2),
        ..Default::default()
    };
    let summary = Executor::new(store.clone())
        .execute(
            plan(run, target.clone(), vec![], options),
            RunHooks::default(),
        )
        .await
        .unwrap();
    assert_eq!(summary.succeeded_count, items as i64);
    let rejected = target.rejected.load(Ordering::SeqCst);
    // Without adaptation about 400 calls are refused here (retries keep 32
    // attempts going at a capacity of 4); with it, about 70: the probes
    // above capacity as the limit grows back.
    assert!(
        rejected < items as usize / 2,
        "{rejected} calls refused for {items} items"
    );
}

#[tokio::test]
async fn the_process_wide_item_limit_caps_runs_sharing_an_executor() {
    let (store, _dir) = store().await;
    let target = Arc::new(MockTarget::default());
    let executor = Executor::new(store.clone()).with_process_item_slots(2);
    let mut runs = Vec::new();
    for _ in 0..3 {
        let inputs = (0..6).map(|i| json!({"n": i, "delayMs": 20})).collect();
        runs.push(dataset_run(&store, inputs).await);
    }
    let handles: Vec<_> = runs
        .into_iter()
        .map(|run| {
            let (executor, target) = (executor.clone(), target.clone());
            tokio::spawn(async move {
                executor
                    .execute(plan(run, target, vec![], opts(5)), RunHooks::default())
                    .await
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.await.unwrap().unwrap().succeeded_count, 6);
    }
    assert_eq!(target.max_in_flight.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn retained_results_come_back_in_dataset_order() {
    let (store, _dir) = store().await;
    // Earlier items are slower, so they complete last.
    let inputs = (0..6)
        .map(|i| json!({"n": i, "delayMs": (6 - i) * 30}))
        .collect();
    let run = dataset_run(&store, inputs).await;
    let (seen, cb) = collecting();
    let summary = Executor::new(store.clone())
        .execute(
            plan(run, Arc::new(MockTarget::default()), vec![], opts(6)),
            RunHooks {
                on_item_complete: Some(cb),
                retain_results: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let order: Vec<i64> = summary.results.iter().map(|r| r.index).collect();
    assert_eq!(order, vec![0, 1, 2, 3, 4, 5]);
    let completion: Vec<i64> = seen.lock().unwrap().iter().map(|(_, i)| *i).collect();
    assert_eq!(
        completion.first(),
        Some(&5),
        "callbacks fire in completion order: {completion:?}"
    );
}

/// Fails any batch that contains the item with input `{"n": 2}`.
struct PoisonedSink {
    store: Arc<dyn Store>,
}

#[async_trait]
impl ResultSink for PoisonedSink {
    async fn write(
        &self,
        run_id: &str,
        claim: &Claim,
        batch: Vec<NewResult>,
    ) -> Result<WriteOutcome, StoreError> {
        if batch.iter().any(|r| r.input["n"] == 2) {
            return Err(StoreError::Conflict("disk on fire".into()));
        }
        self.store.write_results(run_id, claim, batch).await
    }
}

#[tokio::test]
async fn a_storage_failure_on_one_result_is_reported_and_not_fatal() {
    let (store, _dir) = store().await;
    let run = dataset_run(&store, plain(5)).await;
    let run_id = run.id.clone();
    let executor = Executor::new(store.clone()).with_sink(Arc::new(PoisonedSink {
        store: store.clone(),
    }));
    let summary = executor
        .execute(
            plan(run, Arc::new(MockTarget::default()), vec![], opts(5)),
            RunHooks::default(),
        )
        .await
        .unwrap();
    assert_eq!(summary.status, RunStatus::Completed);
    assert_eq!(summary.persistence_failures, 1);
    let poisoned = summary.results.iter().find(|r| r.index == 2).unwrap();
    assert!(
        poisoned
            .persistence_error
            .as_deref()
            .unwrap()
            .contains("disk on fire")
    );
    assert_eq!(
        stored_count(&store, &run_id).await,
        4,
        "the other four results were stored"
    );
}

#[tokio::test]
async fn progress_counts_are_visible_while_the_run_executes() {
    let (store, _dir) = store().await;
    let inputs = (0..12).map(|i| json!({"n": i, "delayMs": 50})).collect();
    let run = dataset_run(&store, inputs).await;
    let run_id = run.id.clone();
    let exec = Executor::new(store.clone());
    let handle = tokio::spawn(async move {
        exec.execute(
            plan(run, Arc::new(MockTarget::default()), vec![], opts(2)),
            RunHooks::default(),
        )
        .await
    });
    let mut seen_partial = false;
    for _ in 0..200 {
        let row = store.get_run(TENANT, &run_id).await.unwrap();
        if row.status == RunStatus::Running && row.succeeded_count > 0 && row.succeeded_count < 12 {
            seen_partial = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    handle.await.unwrap().unwrap();
    assert!(
        seen_partial,
        "a poller never saw counts grow during the run"
    );
}

#[tokio::test]
async fn an_interrupted_run_resumes_only_the_items_without_a_result() {
    let (store, _dir) = store().await;
    let inputs = (0..8).map(|i| json!({"n": i, "delayMs": 40})).collect();
    let run = dataset_run(&store, inputs).await;
    let run_id = run.id.clone();
    let target = Arc::new(MockTarget::default());

    // First process: shut down (drain) after a few items.
    let drain = CancellationToken::new();
    let d = drain.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        d.cancel();
    });
    let first = Executor::new(store.clone())
        .execute(
            plan(run, target.clone(), vec![], opts(2)),
            RunHooks {
                drain,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(first.interrupted);
    assert_eq!(first.status, RunStatus::Running);
    let done_first = first.succeeded_count;
    assert!(done_first > 0 && done_first < 8, "{done_first}");

    // Second process: picks the run up and finishes the rest only.
    let row = store.get_run(TENANT, &run_id).await.unwrap();
    let second = Executor::new(store.clone())
        .execute(
            plan(row, target.clone(), vec![], opts(2)),
            RunHooks::default(),
        )
        .await
        .unwrap();
    assert_eq!(second.status, RunStatus::Completed);
    assert_eq!(second.succeeded_count, 8);
    assert_eq!(target.calls.load(Ordering::SeqCst), 8, "no item ran twice");
    assert_eq!(stored_count(&store, &run_id).await, 8);
}

#[tokio::test]
async fn a_cancel_requested_before_the_run_is_claimed_starts_no_item() {
    let (store, _dir) = store().await;
    let run = dataset_run(&store, plain(6)).await;
    // Held by a process that dies right after the cancel request reached
    // the store; its lease then lapses and another process takes the run.
    store
        .claim_run(TENANT, &run.id, "dying-host", Duration::from_millis(200))
        .await
        .unwrap();
    let requested = store.request_cancel(TENANT, &run.id).await.unwrap();
    assert_eq!(requested.status, RunStatus::Running);
    assert!(requested.cancel_requested);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let row = store.get_run(TENANT, &run.id).await.unwrap();
    let target = Arc::new(MockTarget::default());
    let summary = Executor::new(store.clone())
        .execute(
            plan(row, target.clone(), vec![], opts(3)),
            RunHooks::default(),
        )
        .await
        .unwrap();
    assert_eq!(summary.status, RunStatus::Cancelled);
    assert_eq!(target.calls.load(Ordering::SeqCst), 0);
    assert_eq!(summary.skipped_count, 6);
}

#[tokio::test]
async fn a_local_cancel_is_recorded_in_storage() {
    let (store, _dir) = store().await;
    let inputs = (0..10).map(|i| json!({"n": i, "delayMs": 100})).collect();
    let run = dataset_run(&store, inputs).await;
    let run_id = run.id.clone();
    let cancel = CancellationToken::new();
    let exec = Executor::new(store.clone());
    let hooks = RunHooks {
        cancel: cancel.clone(),
        ..Default::default()
    };
    let handle = tokio::spawn(async move {
        exec.execute(
            plan(run, Arc::new(MockTarget::default()), vec![], opts(1)),
            hooks,
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    cancel.cancel();
    // Even before the executor finalizes, the request is visible to others
    // (a process that dies now leaves a run the next one cancels).
    let mut recorded = false;
    for _ in 0..100 {
        let row = store.get_run(TENANT, &run_id).await.unwrap();
        if row.cancel_requested || row.status == RunStatus::Cancelled {
            recorded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(recorded);
    assert_eq!(handle.await.unwrap().unwrap().status, RunStatus::Cancelled);
}

#[tokio::test]
async fn nul_characters_from_a_plugin_are_stored_on_both_backends() {
    for url in [
        None,
        Some(assay_test_support::postgres::fresh_postgres_database()),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let url = url
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.path().join("n.db").display()));
        let store = assay_store::connect(&url).await.unwrap();
        let run = dataset_run(&store, vec![json!({"emitNul": true})]).await;
        let run_id = run.id.clone();
        let summary = Executor::new(store.clone())
            .execute(
                plan(run, Arc::new(MockTarget::default()), vec![], opts(1)),
                RunHooks::default(),
            )
            .await
            .unwrap();
        assert_eq!(summary.persistence_failures, 0, "{url}");
        let stored = store
            .list_results(
                TENANT,
                &run_id,
                Page {
                    page: 0,
                    per_page: 10,
                },
            )
            .await
            .unwrap();
        assert_eq!(stored.total, 1, "{url}");
        let output = stored.items[0].output.as_ref().unwrap();
        assert_eq!(output["text"], "a\u{FFFD}b");
        assert_eq!(
            stored.items[0].target_metadata,
            Some(json!({"model": "m\u{FFFD}"})),
            "{url}"
        );
    }
}

#[tokio::test]
async fn target_metadata_is_stored_with_the_result() {
    let (store, _dir) = store().await;
    let run = dataset_run(&store, plain(3)).await;
    let run_id = run.id.clone();
    let (seen, cb) = collecting();
    Executor::new(store.clone())
        .execute(
            plan(run, Arc::new(MockTarget::default()), vec![], opts(2)),
            RunHooks {
                on_item_complete: Some(cb),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let stored = store
        .list_results(TENANT, &run_id, Page::default())
        .await
        .unwrap();
    assert_eq!(stored.total, 3);
    for result in &stored.items {
        assert_eq!(
            result.target_metadata,
            Some(json!({"usage": {"totalTokens": result.item_id.len()}})),
            "the mock target reports its item id's length as usage"
        );
    }
    for (item, _) in seen.lock().unwrap().iter() {
        assert!(item.result.target_metadata.is_some());
    }
}

#[tokio::test]
async fn cancelling_a_run_nobody_holds_finalizes_it_at_once_on_both_backends() {
    for url in [
        None,
        Some(assay_test_support::postgres::fresh_postgres_database()),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let url = url
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display()));
        let store = assay_store::connect(&url).await.unwrap();
        let run = dataset_run(&store, plain(4)).await;
        // Interrupted by a shutdown: running, lease released.
        let run = store
            .claim_run(TENANT, &run.id, "gone", Duration::from_secs(30))
            .await
            .unwrap();
        store
            .release_run(&run.id, &Claim::of("gone", &run))
            .await
            .unwrap();
        let cancelled = store.request_cancel(TENANT, &run.id).await.unwrap();
        assert_eq!(cancelled.status, RunStatus::Cancelled, "{url}");
        assert_eq!(cancelled.skipped_count, 4);
        assert!(cancelled.completed_at.is_some());
        // And so it can be deleted.
        store.delete_run(TENANT, &run.id).await.unwrap();
    }
}

/// Holds every write until it is opened, then writes to the store.
struct GatedSink {
    store: Arc<dyn Store>,
    open: tokio::sync::watch::Receiver<bool>,
}

#[async_trait]
impl ResultSink for GatedSink {
    async fn write(
        &self,
        run_id: &str,
        claim: &Claim,
        batch: Vec<NewResult>,
    ) -> Result<WriteOutcome, StoreError> {
        let mut open = self.open.clone();
        open.wait_for(|open| *open)
            .await
            .expect("the test holds the sender");
        self.store.write_results(run_id, claim, batch).await
    }
}

/// Waits (up to 10 s) until `calls` reaches `n`.
async fn calls_reach(target: &MockTarget, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while target.calls.load(Ordering::SeqCst) < n {
        assert!(
            Instant::now() < deadline,
            "only {} calls",
            target.calls.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// How many results of `run_id` are stored.
async fn stored_count(store: &Arc<dyn Store>, run_id: &str) -> i64 {
    store
        .list_results(
            TENANT,
            run_id,
            Page {
                page: 0,
                per_page: 1,
            },
        )
        .await
        .unwrap()
        .total
}

/// A 100-item run, 2 in flight, executing in the background against a
/// [`GatedSink`] that holds every write until `open` says `true`.
struct GatedRun {
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
    run_id: String,
    target: Arc<MockTarget>,
    open: tokio::sync::watch::Sender<bool>,
    execution: tokio::task::JoinHandle<Result<assay_runner::RunSummary, assay_runner::RunError>>,
}

async fn gated_run(hooks: RunHooks) -> GatedRun {
    let (store, dir) = store().await;
    let run = dataset_run(&store, plain(100)).await;
    let run_id = run.id.clone();
    let (open, gate) = tokio::sync::watch::channel(false);
    let executor = Executor::new(store.clone()).with_sink(Arc::new(GatedSink {
        store: store.clone(),
        open: gate,
    }));
    let target = Arc::new(MockTarget::default());
    let execution = tokio::spawn({
        let target = target.clone();
        async move {
            executor
                .execute(plan(run, target, vec![], opts(2)), hooks)
                .await
        }
    });
    GatedRun {
        store,
        _dir: dir,
        run_id,
        target,
        open,
        execution,
    }
}

#[tokio::test]
async fn the_next_items_compute_while_results_wait_for_their_write_and_no_further() {
    let run = gated_run(RunHooks::default()).await;
    // No write passes, yet items go on computing: each hands its result to
    // the writer and its slot on (an item used to keep its slot until its
    // write passed, which stopped this run at two calls). Up to a full
    // write batch (64, more than the run's 2 in flight) waits so.
    calls_reach(&run.target, 66).await;
    // Then the run stops starting items: 64 results wait for their write,
    // the next two for a place among them, keeping their slots.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        run.target.calls.load(Ordering::SeqCst),
        66,
        "a stalled database stalls the run"
    );

    run.open.send(true).unwrap();
    let summary = run.execution.await.unwrap().unwrap();
    assert_eq!(summary.status, RunStatus::Completed);
    assert_eq!(summary.succeeded_count, 100);
    assert_eq!(
        run.target.calls.load(Ordering::SeqCst),
        100,
        "every item once"
    );
    assert_eq!(stored_count(&run.store, &run.run_id).await, 100);
}

#[tokio::test]
async fn an_aborted_run_queues_no_more_writes() {
    let abort = CancellationToken::new();
    let run = gated_run(RunHooks {
        abort: abort.clone(),
        ..Default::default()
    })
    .await;
    // 64 results queued for their write, two more items waiting for a place.
    calls_reach(&run.target, 66).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Shutdown past its grace period while the database hangs: once writes
    // pass again, the two waiting items find the run aborted and queue
    // nothing (they run again when the run resumes).
    abort.cancel();
    run.open.send(true).unwrap();
    let summary = run.execution.await.unwrap().unwrap();
    assert!(summary.interrupted, "{summary:?}");
    assert_eq!(
        stored_count(&run.store, &run.run_id).await,
        64,
        "only what was queued before the abort"
    );
}
