//! A database outage while a run executes: results computed during the
//! outage are kept and written once the database answers again, never
//! turned into items the run skips. The outage is real: the test server
//! refuses every connection to the run's database and drops the open ones
//! (`ALTER DATABASE ... ALLOW_CONNECTIONS false` + `pg_terminate_backend`),
//! so every statement fails at once, as when the server restarts or the
//! network drops, and the writer's fixed retries (about 1.5 s) run out.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use assay_runner::{Executor, RunHooks, RunOptions};
use assay_store::{Page, RunStatus, Store};
use assay_test_support::postgres::{fresh_postgres_database, postgres_url};
use common::*;
use serde_json::json;
use sqlx::Connection;

/// Shuts the database of `db_url` to every connection for `length`, then
/// opens it again.
async fn outage(db_url: &str, length: Duration) {
    let db = db_url
        .rsplit('/')
        .next()
        .and_then(|tail| tail.split('?').next())
        .expect("a database name")
        .to_string();
    let mut admin = sqlx::PgConnection::connect(&postgres_url()).await.unwrap();
    let allow =
        |on: bool| sqlx::AssertSqlSafe(format!("ALTER DATABASE {db} ALLOW_CONNECTIONS {on}"));
    sqlx::query(allow(false)).execute(&mut admin).await.unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&db)
        .execute(&mut admin)
        .await
        .unwrap();
    tokio::time::sleep(length).await;
    sqlx::query(allow(true)).execute(&mut admin).await.unwrap();
}

fn opts(max_concurrency: usize) -> RunOptions {
    RunOptions {
        max_concurrency,
        ..Default::default()
    }
}

/// Waits until `target` was called `n` times: the run's items were read
/// (both pages: the second, empty one follows at once) and are executing.
async fn wait_for_calls(target: &MockTarget, n: usize) {
    for _ in 0..500 {
        if target.calls.load(Ordering::SeqCst) >= n {
            tokio::time::sleep(Duration::from_millis(50)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the target was never called {n} times");
}

async fn result_count(store: &Arc<dyn Store>, run_id: &str) -> i64 {
    store
        .list_results(TENANT, run_id, Page::default())
        .await
        .unwrap()
        .total
}

/// An outage longer than the writer's retries but shorter than the lease:
/// the first item's result waits the outage out and is written; the run
/// completes with one result per item and nothing skipped. (With a fixed
/// number of retries the first result was a persistence failure and the
/// run completed with that item skipped for good.)
#[tokio::test]
async fn an_outage_longer_than_the_retries_loses_no_result() {
    let url = fresh_postgres_database();
    let store = assay_store::connect(&url).await.unwrap();
    let run = dataset_run(
        &store,
        vec![
            json!({"n": 0, "delayMs": 200}),
            json!({"n": 1, "delayMs": 3500}),
        ],
    )
    .await;
    let run_id = run.id.clone();
    let target = Arc::new(MockTarget::default());
    let executor = Executor::new(store.clone()).with_lease(Duration::from_secs(30));
    let execution = tokio::spawn({
        let target = target.clone();
        async move {
            executor
                .execute(plan(run, target, vec![], opts(2)), RunHooks::default())
                .await
        }
    });
    wait_for_calls(&target, 2).await;
    // The first result arrives in the outage; the second after it.
    outage(&url, Duration::from_millis(2500)).await;
    let summary = execution.await.unwrap().unwrap();
    assert_eq!(summary.status, RunStatus::Completed);
    assert_eq!(summary.persistence_failures, 0);
    let run = store.get_run(TENANT, &run_id).await.unwrap();
    assert_eq!((run.succeeded_count, run.skipped_count), (2, 0), "{run:?}");
    assert_eq!(result_count(&store, &run_id).await, 2);
}

/// An outage longer than the lease: the run stops once its lease could not
/// be renewed for a whole lease (another process may take it from then
/// on), with its unwritten results neither written nor counted, and is left
/// resumable. A later claim runs the missing items and completes it with
/// exactly one result per item.
#[tokio::test]
async fn an_outage_longer_than_the_lease_releases_the_run_and_a_later_claim_completes_it() {
    let url = fresh_postgres_database();
    let store = assay_store::connect(&url).await.unwrap();
    let inputs = (0..3).map(|i| json!({"n": i, "delayMs": 300})).collect();
    let run = dataset_run(&store, inputs).await;
    let run_id = run.id.clone();
    let target = Arc::new(MockTarget::default());
    let executor = Executor::new(store.clone()).with_lease(Duration::from_secs(1));
    let execution = tokio::spawn({
        let target = target.clone();
        let run = run.clone();
        async move {
            executor
                .execute(plan(run, target, vec![], opts(3)), RunHooks::default())
                .await
        }
    });
    wait_for_calls(&target, 3).await;
    outage(&url, Duration::from_secs(4)).await;
    let summary = execution.await.unwrap().unwrap();
    assert!(summary.interrupted, "{summary:?}");
    assert_eq!(summary.persistence_failures, 0);
    let stopped = store.get_run(TENANT, &run_id).await.unwrap();
    assert_eq!(stopped.status, RunStatus::Running, "left resumable");
    assert_eq!(stopped.skipped_count, 0);
    assert_eq!(result_count(&store, &run_id).await, 0);

    let resumed = Executor::new(store.clone())
        .execute(
            plan(run, Arc::new(MockTarget::default()), vec![], opts(3)),
            RunHooks::default(),
        )
        .await
        .unwrap();
    assert_eq!(resumed.status, RunStatus::Completed);
    let done = store.get_run(TENANT, &run_id).await.unwrap();
    assert_eq!(
        (done.succeeded_count, done.failed_count, done.skipped_count),
        (3, 0, 0)
    );
    let results = store
        .list_results(TENANT, &run_id, Page::default())
        .await
        .unwrap();
    let mut items: Vec<&str> = results.items.iter().map(|r| r.item_id.as_str()).collect();
    items.sort();
    items.dedup();
    assert_eq!((results.total, items.len()), (3, 3), "one result per item");
}
