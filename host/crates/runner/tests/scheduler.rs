//! The trigger, the background scheduler and multi-process sharing, with real
//! wasm plugins in the sandbox.

use std::sync::Arc;
use std::time::{Duration, Instant};

use assay_plugin_host::{HostConfig, PluginHost};
use assay_runner::{
    Catalog, Executor, RunError, RunOptions, RunRequest, Scheduler, TargetType, create_run,
};
use assay_store::{NewDataset, NewItem, Page, Run, RunStatus, Store};
use serde_json::{Value, json};

const TENANT: &str = "default";

struct Env {
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    _dir: tempfile::TempDir,
}

async fn env_with(url: Option<String>) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let url =
        url.unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()));
    let store = assay_store::connect(&url).await.unwrap();
    let catalog = Arc::new(catalog_for(&store, &dir));
    for name in ["echo", "exact-match", "hostile-target"] {
        catalog
            .register_file(TENANT, &assay_test_support::plugin_wasm(name))
            .await
            .unwrap();
    }
    Env {
        store,
        catalog,
        _dir: dir,
    }
}

fn catalog_for(store: &Arc<dyn Store>, dir: &tempfile::TempDir) -> Catalog {
    let host = PluginHost::new(HostConfig {
        cache_dir: Some(dir.path().join("cache")),
        ..Default::default()
    })
    .unwrap();
    Catalog::new(host, store.clone())
}

async fn dataset(store: &Arc<dyn Store>, items: Vec<(Value, Option<Value>)>) -> String {
    let ds = store
        .create_dataset(
            TENANT,
            NewDataset {
                name: format!("ds-{}", uuid::Uuid::now_v7()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let items = items
        .into_iter()
        .map(|(input, expected_output)| NewItem {
            input,
            expected_output,
            context: None,
        })
        .collect();
    store.add_items(TENANT, &ds.id, items).await.unwrap();
    ds.id
}

fn request(dataset_id: &str, target: &str, scorers: &[&str]) -> RunRequest {
    RunRequest {
        dataset_id: dataset_id.into(),
        version: None,
        target_type: TargetType::Plugin,
        target_id: target.into(),
        scorer_ids: scorers.iter().map(|s| s.to_string()).collect(),
        options: RunOptions::default(),
        run_id: None,
    }
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

#[tokio::test]
async fn trigger_rejects_what_it_can_check_before_creating_anything() {
    let env = env_with(None).await;
    let ds = dataset(&env.store, vec![(json!("a"), Some(json!("a")))]).await;

    let err = create_run(&env.store, &env.catalog, TENANT, request(&ds, "nope", &[]))
        .await
        .unwrap_err();
    assert!(matches!(err, RunError::UnknownPlugin { .. }));
    assert!(err.to_string().contains("`nope`"), "{err}");

    let err = create_run(
        &env.store,
        &env.catalog,
        TENANT,
        request(&ds, "echo", &["missing-scorer"]),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("missing-scorer"), "{err}");

    let err = create_run(
        &env.store,
        &env.catalog,
        TENANT,
        request(&ds, "exact-match", &[]),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RunError::WrongPluginKind { .. }), "{err}");

    let mut bad = request(&ds, "echo", &[]);
    bad.options.max_concurrency = 0;
    let err = create_run(&env.store, &env.catalog, TENANT, bad)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("maxConcurrency"), "{err}");

    let empty = env
        .store
        .create_dataset(
            TENANT,
            NewDataset {
                name: "empty".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let err = create_run(
        &env.store,
        &env.catalog,
        TENANT,
        request(&empty.id, "echo", &[]),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RunError::EmptyDataset { .. }), "{err}");

    // Nothing was created by the rejected triggers.
    let runs = env
        .store
        .list_runs(
            TENANT,
            None,
            Page {
                page: 0,
                per_page: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(runs.total, 0);
}

#[tokio::test]
async fn scheduler_executes_pending_runs_in_the_background_with_real_plugins() {
    let env = env_with(None).await;
    let ds = dataset(
        &env.store,
        vec![
            (json!("Paris"), Some(json!("Paris"))),
            (json!("Lyon"), Some(json!("Paris"))),
            (json!("Nice"), Some(json!("Nice"))),
        ],
    )
    .await;
    let scheduler = Scheduler::start(Executor::new(env.store.clone()), env.catalog.clone(), 4);
    let run = create_run(
        &env.store,
        &env.catalog,
        TENANT,
        request(&ds, "echo", &["exact-match"]),
    )
    .await
    .unwrap();
    assert_eq!(run.status, RunStatus::Pending);
    scheduler.wake();
    let done = wait_for(&env.store, &run.id, |r| r.status.is_terminal()).await;
    assert_eq!(done.status, RunStatus::Completed);
    assert_eq!(
        (done.succeeded_count, done.failed_count, done.skipped_count),
        (3, 0, 0)
    );
    let results = env
        .store
        .list_results(
            TENANT,
            &run.id,
            Page {
                page: 0,
                per_page: 10,
            },
        )
        .await
        .unwrap();
    let scores: Vec<Option<f64>> = results.items.iter().map(|r| r.scores[0].score).collect();
    assert_eq!(scores, vec![Some(1.0), Some(0.0), Some(1.0)]);
    scheduler.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn runs_beyond_the_scheduler_capacity_stay_pending_until_they_start() {
    let env = env_with(None).await;
    let slow = (0..4).map(|i| (json!(i), None)).collect();
    let ds = dataset(&env.store, slow).await;
    let scheduler = Scheduler::start(Executor::new(env.store.clone()), env.catalog.clone(), 1);
    let mut req = request(&ds, "hostile-target", &[]);
    req.options.target_config = Some(json!({"mode": "sleep", "ms": 100}));
    req.options.max_concurrency = 1;
    let first = create_run(&env.store, &env.catalog, TENANT, req.clone())
        .await
        .unwrap();
    let second = create_run(&env.store, &env.catalog, TENANT, req)
        .await
        .unwrap();
    scheduler.wake();
    wait_for(&env.store, &first.id, |r| r.status == RunStatus::Running).await;
    let queued = env.store.get_run(TENANT, &second.id).await.unwrap();
    assert_eq!(
        queued.status,
        RunStatus::Pending,
        "only one run may execute at once"
    );
    let a = wait_for(&env.store, &first.id, |r| r.status.is_terminal()).await;
    let b = wait_for(&env.store, &second.id, |r| r.status.is_terminal()).await;
    assert_eq!(
        (a.status, b.status),
        (RunStatus::Completed, RunStatus::Completed)
    );
    scheduler.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn cancelling_through_the_scheduler_stops_a_running_run() {
    let env = env_with(None).await;
    let ds = dataset(&env.store, (0..40).map(|i| (json!(i), None)).collect()).await;
    let scheduler = Scheduler::start(Executor::new(env.store.clone()), env.catalog.clone(), 2);
    let mut req = request(&ds, "hostile-target", &[]);
    req.options.target_config = Some(json!({"mode": "sleep", "ms": 100}));
    req.options.max_concurrency = 2;
    let run = create_run(&env.store, &env.catalog, TENANT, req)
        .await
        .unwrap();
    scheduler.wake();
    wait_for(&env.store, &run.id, |r| r.succeeded_count >= 2).await;
    scheduler.cancel(TENANT, &run.id).await.unwrap();
    let done = wait_for(&env.store, &run.id, |r| r.status.is_terminal()).await;
    assert_eq!(done.status, RunStatus::Cancelled);
    assert!(done.skipped_count > 0);
    assert_eq!(
        done.succeeded_count + done.failed_count + done.skipped_count,
        40
    );
    scheduler.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_shutdown_leaves_the_run_resumable_and_the_next_process_finishes_it() {
    let env = env_with(None).await;
    let ds = dataset(&env.store, (0..30).map(|i| (json!(i), None)).collect()).await;
    let mut req = request(&ds, "hostile-target", &[]);
    req.options.target_config = Some(json!({"mode": "sleep", "ms": 50}));
    req.options.max_concurrency = 3;
    let run = create_run(&env.store, &env.catalog, TENANT, req)
        .await
        .unwrap();

    let first = Scheduler::start(Executor::new(env.store.clone()), env.catalog.clone(), 2);
    wait_for(&env.store, &run.id, |r| r.succeeded_count >= 3).await;
    first.shutdown(Duration::from_secs(5)).await;
    let paused = env.store.get_run(TENANT, &run.id).await.unwrap();
    assert_eq!(
        paused.status,
        RunStatus::Running,
        "left resumable, not finalized"
    );
    assert!(paused.succeeded_count < 30);

    // A new process (new owner) takes it over at once: the lease was released.
    let second = Scheduler::start(Executor::new(env.store.clone()), env.catalog.clone(), 2);
    let done = wait_for(&env.store, &run.id, |r| r.status.is_terminal()).await;
    assert_eq!(done.status, RunStatus::Completed);
    assert_eq!(done.succeeded_count, 30);
    let results = env
        .store
        .list_results(
            TENANT,
            &run.id,
            Page {
                page: 0,
                per_page: 100,
            },
        )
        .await
        .unwrap();
    assert_eq!(results.total, 30, "exactly one result per item");
    second.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn two_processes_share_the_runs_of_one_postgres_database() {
    let url = assay_test_support::postgres::fresh_postgres_database();
    let env = env_with(Some(url)).await;
    let ds = dataset(&env.store, (0..10).map(|i| (json!(i), None)).collect()).await;
    let other_dir = tempfile::tempdir().unwrap();
    let other_catalog = Arc::new(catalog_for(&env.store, &other_dir));
    let a = Scheduler::start(Executor::new(env.store.clone()), env.catalog.clone(), 2);
    let b = Scheduler::start(Executor::new(env.store.clone()), other_catalog, 2);
    let mut ids = Vec::new();
    for _ in 0..6 {
        let mut req = request(&ds, "hostile-target", &[]);
        req.options.target_config = Some(json!({"mode": "sleep", "ms": 30}));
        ids.push(
            create_run(&env.store, &env.catalog, TENANT, req)
                .await
                .unwrap()
                .id,
        );
    }
    a.wake();
    b.wake();
    let (sa, sb) = (a.clone(), b.clone());
    let sampler = tokio::spawn(async move {
        let (mut seen_a, mut seen_b) = (false, false);
        for _ in 0..2000 {
            seen_a |= sa.active_runs() > 0;
            seen_b |= sb.active_runs() > 0;
            if seen_a && seen_b {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        (seen_a, seen_b)
    });
    for id in &ids {
        let done = wait_for(&env.store, id, |r| r.status.is_terminal()).await;
        assert_eq!(done.status, RunStatus::Completed);
        let results = env
            .store
            .list_results(
                TENANT,
                id,
                Page {
                    page: 0,
                    per_page: 100,
                },
            )
            .await
            .unwrap();
        assert_eq!(results.total, 10);
    }
    assert_eq!(
        sampler.await.unwrap(),
        (true, true),
        "both processes executed runs"
    );
    a.shutdown(Duration::from_secs(5)).await;
    b.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_run_whose_plugin_disappeared_fails_with_the_reason() {
    let env = env_with(None).await;
    let ds = dataset(&env.store, vec![(json!("a"), None)]).await;
    let run = create_run(&env.store, &env.catalog, TENANT, request(&ds, "echo", &[]))
        .await
        .unwrap();
    env.store.delete_plugin(TENANT, "echo").await.unwrap();
    // A fresh process: nothing cached in memory.
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(catalog_for(&env.store, &dir));
    let scheduler = Scheduler::start(Executor::new(env.store.clone()), catalog, 1);
    let done = wait_for(&env.store, &run.id, |r| r.status.is_terminal()).await;
    assert_eq!(done.status, RunStatus::Failed);
    assert!(
        done.error.as_deref().unwrap_or_default().contains("echo"),
        "{done:?}"
    );
    scheduler.shutdown(Duration::from_secs(5)).await;
}
