//! The scheduler and its leases, with real wasm plugins: it never claims
//! again a run it executes (even once that run's lease lapsed), and it keeps
//! a run's lease while the run's plugins load, however long that takes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use assay_plugin_host::{HostConfig, PluginHost};
use assay_runner::{Catalog, Executor, RunOptions, RunRequest, Scheduler, TargetType, create_run};
use assay_store::{NewDataset, NewItem, Run, RunStatus, Store};
use serde_json::json;
use sqlx::Connection;

const TENANT: &str = "default";
const LEASE: Duration = Duration::from_secs(30);

struct Env {
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    url: String,
    _dir: tempfile::TempDir,
}

/// A store at `url` (a fresh SQLite file without one) with the sleeping
/// target and `echo` registered.
async fn env_with(url: Option<String>) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let url =
        url.unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()));
    let store = assay_store::connect(&url).await.unwrap();
    let host = PluginHost::new(HostConfig {
        cache_dir: Some(dir.path().join("cache")),
        ..Default::default()
    })
    .unwrap();
    let catalog = Arc::new(Catalog::new(host, store.clone()));
    for name in ["echo", "hostile-target"] {
        catalog
            .register_file(TENANT, &assay_test_support::plugin_wasm(name))
            .await
            .unwrap();
    }
    Env {
        store,
        catalog,
        url,
        _dir: dir,
    }
}

/// A run of `target` over `items` items (the sleeping target sleeps `ms`
/// per item, one item at a time).
async fn run_of(env: &Env, target: &str, items: usize, ms: u64) -> Run {
    let ds = env
        .store
        .create_dataset(
            TENANT,
            NewDataset {
                name: format!("ds-{}", uuid::Uuid::now_v7()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let items = (0..items)
        .map(|i| NewItem {
            input: json!(i),
            expected_output: None,
            context: None,
        })
        .collect();
    env.store.add_items(TENANT, &ds.id, items).await.unwrap();
    let mut options = RunOptions {
        max_concurrency: 1,
        ..Default::default()
    };
    if target == "hostile-target" {
        options.target_config = Some(json!({"mode": "sleep", "ms": ms}));
    }
    let request = RunRequest {
        dataset_id: ds.id,
        version: None,
        target_type: TargetType::Plugin,
        target_id: target.into(),
        scorer_ids: vec![],
        options,
        run_id: None,
    };
    create_run(&env.store, &env.catalog, TENANT, request)
        .await
        .unwrap()
}

async fn wait_for(store: &Arc<dyn Store>, run_id: &str, done: impl Fn(&Run) -> bool) -> Run {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let run = store.get_run(TENANT, run_id).await.unwrap();
        if done(&run) {
            return run;
        }
        assert!(Instant::now() < deadline, "run never got there: {run:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A run this scheduler executes has its lease lapse (here: its expiry set
/// in the past, as after a stall longer than the lease). The scheduler's
/// next claims pass it over: a second claim would start a second execution
/// of it in this process and fence the first one out. The run completes
/// under its one claim.
#[tokio::test]
async fn the_scheduler_never_claims_again_a_run_it_executes() {
    let env = env_with(None).await;
    let run = run_of(&env, "hostile-target", 6, 300).await;
    let scheduler = Scheduler::start(Executor::new(env.store.clone()), env.catalog.clone(), 2);
    let executing = wait_for(&env.store, &run.id, |r| r.succeeded_count >= 1).await;
    assert_eq!(executing.status, RunStatus::Running);

    let mut raw = sqlx::SqliteConnection::connect(&env.url).await.unwrap();
    sqlx::query("UPDATE runs SET lease_expires_at = 0 WHERE id = ?")
        .bind(&run.id)
        .execute(&mut raw)
        .await
        .unwrap();
    // Two claim rounds at least.
    scheduler.wake();
    tokio::time::sleep(Duration::from_millis(600)).await;
    scheduler.wake();
    tokio::time::sleep(Duration::from_millis(600)).await;

    let done = wait_for(&env.store, &run.id, |r| r.status.is_terminal()).await;
    assert_eq!(done.status, RunStatus::Completed, "{done:?}");
    assert_eq!(
        done.claim_number, executing.claim_number,
        "claimed again while executing"
    );
    assert_eq!((done.succeeded_count, done.skipped_count), (6, 0));
    scheduler.shutdown(Duration::from_secs(5)).await;
}

/// Loading a run's plugins takes longer than its lease (here the plugin
/// registry is locked by another transaction for three leases, as under
/// lock contention or a slow compile). The scheduler renews the lease
/// meanwhile: no other process can take the run, and it completes once
/// its plugins load, never taken over.
#[tokio::test]
async fn the_lease_is_renewed_while_plugins_load() {
    let env = env_with(Some(assay_test_support::postgres::fresh_postgres_database())).await;
    let run = run_of(&env, "echo", 2, 0).await;
    let lease = Duration::from_secs(1);

    let mut locker = sqlx::PgConnection::connect(&env.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE plugins IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();
    let scheduler = Scheduler::start(
        Executor::new(env.store.clone()).with_lease(lease),
        env.catalog.clone(),
        1,
    );
    wait_for(&env.store, &run.id, |r| r.status == RunStatus::Running).await;
    tokio::time::sleep(lease * 3).await;
    let loading = env.store.get_run(TENANT, &run.id).await.unwrap();
    assert_eq!(loading.succeeded_count, 0, "the plugins are still loading");
    assert!(
        env.store
            .claim_next_run("another-process", LEASE, &[])
            .await
            .unwrap()
            .is_none(),
        "the lease lapsed while the plugins loaded"
    );
    sqlx::query("COMMIT").execute(&mut locker).await.unwrap();

    let done = wait_for(&env.store, &run.id, |r| r.status.is_terminal()).await;
    assert_eq!(done.status, RunStatus::Completed, "{done:?}");
    assert_eq!((done.succeeded_count, done.takeovers), (2, 0));
    scheduler.shutdown(Duration::from_secs(5)).await;
}
