//! Fair share between tenants: how long a small run of tenant B takes while
//! tenant A's queue keeps the process busy, against the same run alone.
//!
//! ```text
//! cargo bench -p assay-runner --bench fairness -- [--a-runs 8] [--a-items 20000]
//!     [--b-items 50] [--b-concurrency 5] [--repeat 3] [--backend sqlite|postgres]
//!     [--keep-resident-mib 0] [--call-slots N] [--phases]
//! ```
//!
//! `--keep-resident-mib M`: freed plugin slots keep up to M MiB of the pages
//! a call wrote (`assay serve --keep-resident-mib`; 0, the server's
//! default, keeps none). `--call-slots N`: the process's plugin call slots
//! (default twice the cores). `--phases`: for each of B's runs, when it was
//! created, claimed and finished, from its trigger.
//!
//! One process, as `assay serve` assembles it: a store (temp SQLite file or
//! a fresh PostgreSQL database), the background [`Scheduler`] with the
//! server's defaults (4 runs, 256 item slots), the shipped `echo` target and
//! `exact-match`, `levenshtein`, `contains` scorers as real wasm components.
//! Tenant A (`default`, maxConcurrency 64 per run) queues `--a-runs` runs of
//! `--a-items` items; once they fill the process, tenant B triggers a run of
//! `--b-items` items (`--b-concurrency`, default 5 as for an API trigger
//! without options), `--repeat` times one after the other. The figure is the
//! time from B's trigger to its run being finished, read by polling the
//! store every 2 ms, against the same run with the process otherwise idle.

use std::sync::Arc;
use std::time::{Duration, Instant};

use assay_plugin_host::{HostConfig, PluginHost};
use assay_runner::{Catalog, Executor, RunOptions, RunRequest, Scheduler, TargetType, create_run};
use assay_store::{NewDataset, NewItem, Run, RunStatus, Store, Tenant};
use chrono::Utc;
use serde_json::json;

const A: &str = "default";
const B: &str = "tenant-b";
const PLUGINS: [&str; 4] = ["echo", "exact-match", "levenshtein", "contains"];

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().ok().expect("a number"))
        .unwrap_or(default)
}

fn backend() -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--backend")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| "sqlite".into())
}

async fn dataset(store: &Arc<dyn Store>, tenant: &str, n: usize) -> String {
    let ds = store
        .create_dataset(
            tenant,
            NewDataset {
                name: format!("bench-{n}"),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut added = 0;
    while added < n {
        let chunk = (n - added).min(50_000);
        let batch = (added..added + chunk)
            .map(|i| NewItem {
                input: json!(format!("question number {i}")),
                expected_output: Some(json!(format!("question number {i}"))),
                context: None,
            })
            .collect();
        store.add_items(tenant, &ds.id, batch).await.unwrap();
        added += chunk;
    }
    ds.id
}

fn request(dataset_id: &str, concurrency: usize) -> RunRequest {
    RunRequest {
        dataset_id: dataset_id.into(),
        version: None,
        target_type: TargetType::Plugin,
        target_id: "echo".into(),
        scorer_ids: PLUGINS[1..].iter().map(|s| s.to_string()).collect(),
        options: RunOptions {
            max_concurrency: concurrency,
            ..Default::default()
        },
        run_id: None,
    }
}

async fn wait_done(store: &Arc<dyn Store>, tenant: &str, id: &str) -> Run {
    loop {
        let run = store.get_run(tenant, id).await.unwrap();
        if run.status.is_terminal() {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Triggers B's run and returns how long it took to finish.
async fn b_run(env: &Env, dataset_id: &str, concurrency: usize) -> Duration {
    let start = Instant::now();
    let run = create_run(
        &env.store,
        &env.catalog,
        B,
        request(dataset_id, concurrency),
    )
    .await
    .unwrap();
    let triggered = start.elapsed();
    env.scheduler.wake();
    let done = wait_done(&env.store, B, &run.id).await;
    let took = start.elapsed();
    assert_eq!(done.status, RunStatus::Completed, "{done:?}");
    if std::env::args().any(|a| a == "--phases") {
        // The run row's clock (the store's) against ours, both from the
        // trigger: close enough for milliseconds on one machine.
        let origin = Utc::now() - chrono::Duration::from_std(took).unwrap();
        let since = |t: Option<chrono::DateTime<Utc>>| {
            t.map_or(f64::NAN, |t| {
                (t - origin).num_microseconds().unwrap_or(0) as f64 / 1000.0
            })
        };
        println!(
            "  ms from the trigger: created {:.1}, claimed {:.1}, finished {:.1}, seen finished {:.1}",
            triggered.as_secs_f64() * 1000.0,
            since(done.started_at),
            since(done.completed_at),
            took.as_secs_f64() * 1000.0
        );
    }
    took
}

struct Env {
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    scheduler: Scheduler,
}

fn summary(label: &str, mut times: Vec<Duration>) -> f64 {
    times.sort();
    let ms: Vec<String> = times
        .iter()
        .map(|t| format!("{:.0}", t.as_secs_f64() * 1000.0))
        .collect();
    let median = times[times.len() / 2].as_secs_f64();
    println!(
        "{label}: median {:.0} ms, max {:.0} ms (each: {} ms)",
        median * 1000.0,
        times.last().unwrap().as_secs_f64() * 1000.0,
        ms.join(", ")
    );
    median
}

#[tokio::main]
async fn main() {
    let a_runs: usize = arg("--a-runs", 8);
    let a_items: usize = arg("--a-items", 20_000);
    let b_items: usize = arg("--b-items", 50);
    let b_concurrency: usize = arg("--b-concurrency", 5);
    let repeat: usize = arg("--repeat", 3);
    let backend = backend();

    let dir = tempfile::tempdir().unwrap();
    let url = match backend.as_str() {
        "sqlite" => format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        ),
        "postgres" => assay_test_support::postgres::fresh_postgres_database(),
        other => panic!("unknown backend {other}"),
    };
    let store: Arc<dyn Store> = assay_store::connect(&url).await.unwrap();
    store
        .upsert_tenant(&Tenant::with_defaults(B))
        .await
        .unwrap();
    let host = PluginHost::new(HostConfig {
        cache_dir: Some(dir.path().join("cache")),
        keep_resident_bytes: arg("--keep-resident-mib", 0usize) << 20,
        ..Default::default()
    })
    .unwrap();
    println!("written pages kept: {:?}", host.keep_resident());
    let catalog = Arc::new(Catalog::new(host, store.clone()));
    for tenant in [A, B] {
        for name in PLUGINS {
            catalog
                .register_file(tenant, &assay_test_support::plugin_wasm(name))
                .await
                .unwrap();
        }
    }
    let a_dataset = dataset(&store, A, a_items).await;
    let b_dataset = dataset(&store, B, b_items).await;
    // The server's defaults: 4 runs, 256 item slots.
    let mut executor = Executor::new(store.clone());
    let call_slots: usize = arg("--call-slots", 0);
    if call_slots > 0 {
        executor = executor.with_call_slots(call_slots);
    }
    let scheduler = Scheduler::start(executor, catalog.clone(), 4);
    let env = Env {
        store,
        catalog,
        scheduler,
    };
    println!(
        "backend={backend} A: {a_runs} runs x {a_items} items (maxConcurrency 64); \
         B: {b_items} items (maxConcurrency {b_concurrency}); echo + 3 scorers"
    );

    // Warm-up (loads B's plugins), then B alone.
    b_run(&env, &b_dataset, b_concurrency).await;
    let mut alone = Vec::new();
    for _ in 0..repeat {
        alone.push(b_run(&env, &b_dataset, b_concurrency).await);
    }
    let alone = summary("B alone", alone);

    let a_started = Instant::now();
    let mut queue = Vec::new();
    for _ in 0..a_runs {
        let run = create_run(&env.store, &env.catalog, A, request(&a_dataset, 64))
            .await
            .unwrap();
        queue.push(run.id);
    }
    env.scheduler.wake();
    // Let A fill the process.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut contended = Vec::new();
    for _ in 0..repeat {
        contended.push(b_run(&env, &b_dataset, b_concurrency).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut a_left = 0;
    for id in &queue {
        let run = env.store.get_run(A, id).await.unwrap();
        if !run.status.is_terminal() {
            a_left += 1;
        }
    }
    let behind = summary("B behind A's queue", contended);
    println!(
        "A's runs not finished when B's last run ended: {a_left} of {a_runs} ({:.1} s after A's trigger)",
        a_started.elapsed().as_secs_f64()
    );
    println!("ratio to alone: {:.1}x", behind / alone);

    for id in &queue {
        let _ = env.scheduler.cancel(A, id).await;
    }
    env.scheduler.shutdown(Duration::from_secs(10)).await;
}
