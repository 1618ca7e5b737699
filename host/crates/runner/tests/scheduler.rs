//! The trigger, the background scheduler and multi-process sharing, with real
//! wasm plugins in the sandbox.

use std::sync::Arc;
use std::time::{Duration, Instant};

use assay_plugin_host::{HostConfig, PluginHost};
use assay_runner::{
    Catalog, Executor, RunError, RunOptions, RunRequest, Scheduler, SchedulerConfig, TargetType,
    create_run,
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

/// A run whose process keeps dying (here: a claim by an owner that never
/// renews) is failed once it was taken over more often than the limit,
/// with a message saying why, instead of being resumed forever.
#[tokio::test]
async fn a_run_taken_over_too_often_is_failed_instead_of_resumed() {
    let env = env_with(None).await;
    let ds = dataset(&env.store, vec![(json!("a"), None)]).await;
    let run = create_run(&env.store, &env.catalog, TENANT, request(&ds, "echo", &[]))
        .await
        .unwrap();
    // Two processes took it and died.
    let short = Duration::from_millis(20);
    env.store
        .claim_run(TENANT, &run.id, "dead-1", short)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(40)).await;
    let taken = env
        .store
        .claim_run(TENANT, &run.id, "dead-2", short)
        .await
        .unwrap();
    assert_eq!(taken.takeovers, 1);
    tokio::time::sleep(Duration::from_millis(40)).await;
    let config = SchedulerConfig {
        max_active_runs: 1,
        max_takeovers: 1,
    };
    let scheduler = Scheduler::start_with(
        Executor::new(env.store.clone()),
        env.catalog.clone(),
        config,
    );
    let done = wait_for(&env.store, &run.id, |r| r.status.is_terminal()).await;
    assert_eq!(done.status, RunStatus::Failed, "{done:?}");
    assert_eq!(done.takeovers, 2);
    let error = done.error.unwrap_or_default();
    assert!(
        error.contains("taken over 2 times") && error.contains("limit 1"),
        "{error}"
    );
    scheduler.shutdown(Duration::from_secs(5)).await;
}

// ------------------------------------------------------------ fair share

const OTHER: &str = "tenant-b";

/// Creates tenant `id` with default limits, `weight`, and the sleeping
/// target.
async fn add_tenant(env: &Env, id: &str, weight: i64) {
    let limits = assay_store::TenantLimits {
        weight,
        ..Default::default()
    };
    env.store.create_tenant(id, &limits).await.unwrap();
    env.catalog
        .register_file(id, &assay_test_support::plugin_wasm("hostile-target"))
        .await
        .unwrap();
}

/// A run of `tenant` over `items` items that each sleep `ms`.
async fn sleeping_run(env: &Env, tenant: &str, items: usize, ms: u64, concurrency: usize) -> Run {
    let ds = env
        .store
        .create_dataset(
            tenant,
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
    env.store.add_items(tenant, &ds.id, items).await.unwrap();
    let mut req = request(&ds.id, "hostile-target", &[]);
    req.options.target_config = Some(json!({"mode": "sleep", "ms": ms}));
    req.options.max_concurrency = concurrency;
    create_run(&env.store, &env.catalog, tenant, req)
        .await
        .unwrap()
}

async fn run_of(env: &Env, tenant: &str, id: &str) -> Run {
    env.store.get_run(tenant, id).await.unwrap()
}

/// Tenant A (`default`) queues four long runs; once its runs fill every
/// scheduler, tenant B triggers a four-item run. B's run must finish while
/// A's queue is still there: its third and fourth runs still `pending`, its
/// first not finished. Before fair share, B's run started only after A's
/// queue had been claimed, that is after A's first runs had finished.
async fn another_tenants_queue_does_not_hold_up_a_small_run(env: &Env, schedulers: &[Scheduler]) {
    add_tenant(env, OTHER, 1).await;
    let mut queue = Vec::new();
    for _ in 0..4 {
        // 40 items of 250 ms, at most two at once: 5 s or more per run, a
        // margin for B's run on a loaded machine (A's runs are cancelled
        // once B's is done, so the length costs nothing).
        queue.push(sleeping_run(env, TENANT, 40, 250, 2).await);
    }
    for s in schedulers {
        s.wake();
    }
    let busy = schedulers.len();
    let deadline = Instant::now() + Duration::from_secs(30);
    while schedulers.iter().map(Scheduler::active_runs).sum::<usize>() < busy {
        assert!(Instant::now() < deadline, "A's runs never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    wait_for(&env.store, &queue[0].id, |r| r.succeeded_count >= 1).await;

    let small = sleeping_run(env, OTHER, 4, 100, 4).await;
    schedulers[0].wake();
    let deadline = Instant::now() + Duration::from_secs(30);
    let done = loop {
        let run = run_of(env, OTHER, &small.id).await;
        if run.status.is_terminal() {
            break run;
        }
        assert!(Instant::now() < deadline, "B's run never finished: {run:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(
        (done.status, done.succeeded_count),
        (RunStatus::Completed, 4)
    );
    let first = run_of(env, TENANT, &queue[0].id).await;
    assert!(
        !first.status.is_terminal(),
        "B's run waited for A's first run to finish: {first:?}"
    );
    for queued in &queue[2..] {
        assert_eq!(
            run_of(env, TENANT, &queued.id).await.status,
            RunStatus::Pending,
            "B's run waited for A's queue to be claimed"
        );
    }

    // A's runs still start in the order they were created.
    for s in schedulers {
        for run in &queue {
            let _ = s.cancel(TENANT, &run.id).await;
        }
    }
    for run in &queue {
        wait_for(&env.store, &run.id, |r| r.status.is_terminal()).await;
    }
    let mut started_at = Vec::new();
    for run in &queue {
        started_at.push(run_of(env, TENANT, &run.id).await.started_at);
    }
    // Two processes claiming in the same instant take the first two runs
    // in either order (the second skips the row the first has locked), and
    // each stamps `started_at` with its own clock: claims within a few
    // milliseconds of each other have no order to check.
    let claimed: Vec<_> = started_at.iter().flatten().collect();
    let same_instant = chrono::Duration::milliseconds(50);
    assert!(
        claimed.windows(2).all(|w| *w[1] + same_instant >= *w[0]),
        "A's runs started out of order: {started_at:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_queue_does_not_hold_up_another_tenants_small_run() {
    let env = env_with(None).await;
    // Two runs and four item slots: A's runs alone fill both.
    let scheduler = Scheduler::start(
        Executor::new(env.store.clone()).with_process_item_slots(4),
        env.catalog.clone(),
        2,
    );
    another_tenants_queue_does_not_hold_up_a_small_run(&env, std::slice::from_ref(&scheduler))
        .await;
    scheduler.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_postgres_let_a_small_run_pass_another_tenants_queue() {
    let url = assay_test_support::postgres::fresh_postgres_database();
    let env = env_with(Some(url)).await;
    let other_dir = tempfile::tempdir().unwrap();
    let other_catalog = Arc::new(catalog_for(&env.store, &other_dir));
    // One run and two item slots each: A's first two runs fill both.
    let a = Scheduler::start(
        Executor::new(env.store.clone()).with_process_item_slots(2),
        env.catalog.clone(),
        1,
    );
    let b = Scheduler::start(
        Executor::new(env.store.clone()).with_process_item_slots(2),
        other_catalog,
        1,
    );
    another_tenants_queue_does_not_hold_up_a_small_run(&env, &[a.clone(), b.clone()]).await;
    a.shutdown(Duration::from_secs(5)).await;
    b.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_gets_its_tenants_weighted_share_of_the_item_slots() {
    let env = env_with(None).await;
    add_tenant(&env, OTHER, 3).await;
    let executor = Executor::new(env.store.clone()).with_process_item_slots(4);
    let slots = executor.item_slots().clone();
    let scheduler = Scheduler::start(executor, env.catalog.clone(), 2);
    // A (weight 1): two runs, each allowed all four slots.
    let mut a_runs = Vec::new();
    for _ in 0..2 {
        a_runs.push(sleeping_run(&env, TENANT, 200, 50, 4).await);
    }
    scheduler.wake();
    let deadline = Instant::now() + Duration::from_secs(30);
    while slots.in_use_by(TENANT) < 4 {
        assert!(Instant::now() < deadline, "A never filled the slots");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // B (weight 3) asks for all four too and gets three of them. (Freed
    // slots handed out in turn to the three waiting runs would give B one
    // in three, so never three at once.)
    let small = sleeping_run(&env, OTHER, 24, 50, 4).await;
    scheduler.wake();
    let mut most = 0;
    loop {
        most = most.max(slots.in_use_by(OTHER));
        if run_of(&env, OTHER, &small.id).await.status.is_terminal() {
            break;
        }
        assert!(Instant::now() < deadline, "B's run never finished");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(most >= 3, "B held at most {most} of the four slots");
    for run in &a_runs {
        scheduler.cancel(TENANT, &run.id).await.unwrap();
    }
    scheduler.shutdown(Duration::from_secs(5)).await;
}
