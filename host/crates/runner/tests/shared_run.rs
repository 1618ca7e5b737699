//! One run executed by several processes sharing a PostgreSQL database:
//! the process holding the run's lease and processes helping it each claim
//! chunks of the run's items (`Executor::help`). Each "process" here is an
//! executor with its own owner id, its own connection pool and its own
//! target, so the target's call count is what that process executed.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use assay_runner::{Executor, RunHooks, RunOptions, RunSummary};
use assay_store::{Run, RunStatus, Store};
use assay_test_support::postgres::fresh_postgres_database;
use common::*;
use serde_json::json;
use tokio::task::JoinHandle;

/// A process: a store connection of its own, an executor, a target.
struct Process {
    store: Arc<dyn Store>,
    executor: Executor,
    target: Arc<MockTarget>,
}

async fn process(url: &str, lease: Duration) -> Process {
    let store = assay_store::connect(url).await.unwrap();
    Process {
        executor: Executor::new(store.clone())
            .with_lease(lease)
            .with_chunk_size(128),
        store,
        target: Arc::new(MockTarget::default()),
    }
}

fn opts() -> RunOptions {
    RunOptions {
        max_concurrency: 16,
        ..Default::default()
    }
}

/// `n` items whose target waits 10 ms each.
fn waiting_items(n: usize) -> Vec<serde_json::Value> {
    (0..n).map(|i| json!({"n": i, "delayMs": 10})).collect()
}

/// Starts `p` as the run's lease holder.
fn lead(p: &Process, run: Run, hooks: RunHooks) -> JoinHandle<RunSummary> {
    let (executor, target) = (p.executor.clone(), p.target.clone());
    tokio::spawn(async move {
        executor
            .execute(plan(run, target, vec![], opts()), hooks)
            .await
            .unwrap()
    })
}

/// Waits until the run is running (a lead claimed it), then starts `p`
/// helping it.
fn help(p: &Process, run_id: String, hooks: RunHooks) -> JoinHandle<RunSummary> {
    let (executor, target, store) = (p.executor.clone(), p.target.clone(), p.store.clone());
    tokio::spawn(async move {
        let run = loop {
            let run = store.get_run(TENANT, &run_id).await.unwrap();
            if run.status == RunStatus::Running {
                break run;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let claim = store
            .join_run(TENANT, &run_id, executor.owner())
            .await
            .unwrap();
        executor
            .help(plan(run, target, vec![], opts()), claim, hooks)
            .await
            .unwrap()
    })
}

async fn assert_one_result_per_item(store: &Arc<dyn Store>, run_id: &str, n: usize) {
    let results = all_results(store, run_id).await;
    let ids: HashSet<&str> = results.iter().map(|r| r.item_id.as_str()).collect();
    assert_eq!((results.len(), ids.len()), (n, n));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_execute_one_run_with_one_result_per_item() {
    const N: usize = 4_000;
    let url = fresh_postgres_database();
    let processes = [
        process(&url, Duration::from_secs(30)).await,
        process(&url, Duration::from_secs(30)).await,
        process(&url, Duration::from_secs(30)).await,
    ];
    let run = dataset_run(&processes[0].store, waiting_items(N)).await;
    let run_id = run.id.clone();
    let lead = lead(&processes[0], run, RunHooks::default());
    let helpers = [
        help(&processes[1], run_id.clone(), RunHooks::default()),
        help(&processes[2], run_id.clone(), RunHooks::default()),
    ];
    let summary = lead.await.unwrap();
    for helper in helpers {
        helper.await.unwrap();
    }
    assert_eq!(summary.status, RunStatus::Completed);
    assert_eq!(summary.succeeded_count, N as i64);
    assert_one_result_per_item(&processes[0].store, &run_id, N).await;
    let executed: Vec<usize> = processes
        .iter()
        .map(|p| p.target.calls.load(Ordering::SeqCst))
        .collect();
    // Every item executed once, and every process took a fair part.
    assert_eq!(executed.iter().sum::<usize>(), N, "{executed:?}");
    for calls in &executed {
        assert!(
            *calls >= N / 5,
            "every process executes a share: {executed:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helper_that_dies_loses_only_its_chunks() {
    const N: usize = 2_000;
    let url = fresh_postgres_database();
    let lead_process = process(&url, Duration::from_secs(30)).await;
    // The helper's chunks lapse one second after it stops renewing them.
    let helper_process = process(&url, Duration::from_secs(1)).await;
    let run = dataset_run(&lead_process.store, waiting_items(N)).await;
    let run_id = run.id.clone();
    let lead = lead(&lead_process, run, RunHooks::default());
    let helper = help(&helper_process, run_id.clone(), RunHooks::default());
    // The helper dies mid-run: no renewal, no release, items in flight lost.
    while helper_process.target.calls.load(Ordering::SeqCst) < 200 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    helper.abort();
    let died_at = Instant::now();
    let summary = lead.await.unwrap();
    assert_eq!(summary.status, RunStatus::Completed);
    assert_eq!(summary.succeeded_count, N as i64);
    assert_one_result_per_item(&lead_process.store, &run_id, N).await;
    assert!(
        died_at.elapsed() < Duration::from_secs(20),
        "the lead took the dead helper's chunks over when their lease lapsed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_the_run_stops_its_helpers_and_nothing_is_written_after() {
    const N: usize = 4_000;
    let url = fresh_postgres_database();
    let lead_process = process(&url, Duration::from_secs(30)).await;
    let helper_process = process(&url, Duration::from_secs(30)).await;
    let run = dataset_run(&lead_process.store, waiting_items(N)).await;
    let run_id = run.id.clone();
    let lead_hooks = RunHooks::default();
    let lead = lead(&lead_process, run, lead_hooks.clone());
    let helper = help(&helper_process, run_id.clone(), RunHooks::default());
    while helper_process.target.calls.load(Ordering::SeqCst) < 100 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    lead_hooks.cancel.cancel();
    let cancelled_at = Instant::now();
    let summary = lead.await.unwrap();
    assert_eq!(summary.status, RunStatus::Cancelled);
    // The helper stops at its next write (refused: the run is finished),
    // well before its next lease renewal would tell it.
    let left = helper.await.unwrap();
    assert_eq!(left.status, RunStatus::Cancelled);
    assert!(cancelled_at.elapsed() < Duration::from_secs(5));
    let stored = all_results(&lead_process.store, &run_id).await.len();
    assert!(stored < N, "the run stopped early: {stored} results");
    let run = lead_process.store.get_run(TENANT, &run_id).await.unwrap();
    assert_eq!(
        (run.succeeded_count + run.failed_count) as usize,
        stored,
        "the counts are the results, none written after the finish"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        all_results(&lead_process.store, &run_id).await.len(),
        stored
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unshared_run_is_executed_by_its_lead_alone() {
    const N: usize = 600;
    let url = fresh_postgres_database();
    let mut lead_process = process(&url, Duration::from_secs(30)).await;
    lead_process.executor = lead_process.executor.clone().unshared();
    let other = process(&url, Duration::from_secs(30)).await;
    let run = dataset_run(&lead_process.store, waiting_items(N)).await;
    let run_id = run.id.clone();
    let lead = lead(&lead_process, run, RunHooks::default());
    // Once the lead claimed its chunk, nothing is left to help with.
    while lead_process.target.calls.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        other
            .store
            .run_to_help(other.executor.owner(), &[])
            .await
            .unwrap()
            .is_none()
    );
    let helper = help(&other, run_id.clone(), RunHooks::default());
    let summary = lead.await.unwrap();
    helper.await.unwrap();
    assert_eq!(summary.succeeded_count, N as i64);
    assert_eq!(lead_process.target.calls.load(Ordering::SeqCst), N);
    assert_eq!(other.target.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_waiting_for_others_chunks_holds_no_item_slot() {
    const N: usize = 400;
    let url = fresh_postgres_database();
    let lead_process = process(&url, Duration::from_secs(30)).await;
    let helper_process = process(&url, Duration::from_secs(30)).await;
    // The lead's items are quick; the helper's chunk holds a slow item.
    let mut items = waiting_items(N);
    items[130] = json!({"n": 130, "delayMs": 3_000});
    let run = dataset_run(&lead_process.store, items).await;
    let run_id = run.id.clone();
    let lead = lead(&lead_process, run, RunHooks::default());
    let helper = help(&helper_process, run_id.clone(), RunHooks::default());
    // Wait until only the slow item is left: the lead has handed out and
    // finished everything else and waits for the helper's chunk (or runs
    // the slow item itself, if its chunk is the lead's).
    let store = &lead_process.store;
    loop {
        let run = store.get_run(TENANT, &run_id).await.unwrap();
        if run.succeeded_count >= N as i64 - 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let slow_is_the_helpers = helper_process.target.in_flight.load(Ordering::SeqCst) == 1;
    let lead_slots = lead_process.executor.item_slots().in_use_by(TENANT);
    if slow_is_the_helpers {
        assert_eq!(lead_slots, 0, "the waiting lead gave its kept slots back");
    } else {
        assert_eq!(lead_slots, 1, "only the slow item's slot");
    }
    let summary = lead.await.unwrap();
    helper.await.unwrap();
    assert_eq!(summary.succeeded_count, N as i64);
}
