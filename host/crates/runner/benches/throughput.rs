//! End-to-end run throughput and memory: a dataset of N items through the
//! `echo` target and three shipped scorers (`exact-match`, `levenshtein`,
//! `contains`), all real wasm components in the sandbox, results persisted.
//!
//! ```text
//! cargo bench -p assay-runner --bench throughput -- [--items N] [--backend sqlite|postgres] [--concurrency C] [--repeat R] [--rescore] [--keep-resident-mib M]
//! ```
//!
//! `--keep-resident-mib` sets how much of a freed pool slot's written
//! memory the plugin host keeps (default: what `assay run` keeps; 0
//! decommits every slot after each call).
//!
//! `--repeat R` executes every item R times (trials): the run does
//! `N x R` trials, and items/s counts trials.
//!
//! `--rescore` then re-scores the finished run with the same three scorers
//! (a re-scoring run: outputs read from the stored results, the target not
//! called) and prints its items/s too.
//!
//! Prints items/s of the run (trigger to finalization), and the process RSS
//! sampled while the run executes, to show that memory stays flat with
//! `retain_results` off (a callback counts items, nothing is held).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use assay_plugin_host::{HostConfig, PluginHost};
use assay_runner::{
    Catalog, Executor, RescoreRequest, RunHooks, RunOptions, RunRequest, TargetType,
    create_rescore, create_run, on_item_complete, plan_run,
};
use assay_store::{NewDataset, NewItem, Store};
use serde_json::json;

const TENANT: &str = "default";

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    field("VmRSS:")
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

#[tokio::main]
async fn main() {
    let items: usize = arg("--items")
        .map(|v| v.parse().unwrap())
        .unwrap_or(100_000);
    let backend = arg("--backend").unwrap_or_else(|| "sqlite".into());
    let concurrency: usize = arg("--concurrency")
        .map(|v| v.parse().unwrap())
        .unwrap_or(64);
    let repeat: u32 = arg("--repeat").map(|v| v.parse().unwrap()).unwrap_or(1);
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
    // Like `assay run`: freed slots keep the pages a call wrote, unless
    // `--keep-resident-mib 0` (every page faults in again).
    let keep_resident_bytes = arg("--keep-resident-mib")
        .map_or(assay_plugin_host::RECOMMENDED_KEEP_RESIDENT_BYTES, |v| {
            v.parse::<usize>().unwrap() << 20
        });
    let host = PluginHost::new(HostConfig {
        cache_dir: Some(dir.path().join("cache")),
        keep_resident_bytes,
        ..Default::default()
    })
    .unwrap();
    println!(
        "pages kept resident per freed slot: {:?}",
        host.keep_resident()
    );
    let catalog = Catalog::new(host, store.clone());
    for name in ["echo", "exact-match", "levenshtein", "contains"] {
        catalog
            .register_file(TENANT, &assay_test_support::plugin_wasm(name))
            .await
            .unwrap();
    }

    let ds = store
        .create_dataset(
            TENANT,
            NewDataset {
                name: "bench".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let load = Instant::now();
    let chunk = 50_000;
    let mut added = 0;
    while added < items {
        let n = chunk.min(items - added);
        let batch = (added..added + n)
            .map(|i| NewItem {
                input: json!(format!("question number {i}")),
                expected_output: Some(json!(format!("question number {i}"))),
                context: None,
            })
            .collect();
        store.add_items(TENANT, &ds.id, batch).await.unwrap();
        added += n;
    }
    eprintln!(
        "loaded {items} items in {:.1}s",
        load.elapsed().as_secs_f64()
    );
    let rss_before = rss_mib();

    let trigger = Instant::now();
    let run = create_run(
        &store,
        &catalog,
        TENANT,
        RunRequest {
            dataset_id: ds.id.clone(),
            version: None,
            target_type: TargetType::Plugin,
            target_id: "echo".into(),
            scorer_ids: vec![
                "exact-match".into(),
                "levenshtein".into(),
                "contains".into(),
            ],
            options: RunOptions {
                max_concurrency: concurrency,
                repeat,
                ..Default::default()
            },
            run_id: None,
        },
    )
    .await
    .unwrap();
    let trigger_ms = trigger.elapsed().as_secs_f64() * 1000.0;
    let plan = plan_run(&catalog, TENANT, run, false).await.unwrap();

    let done = Arc::new(AtomicU64::new(0));
    let samples = Arc::new(std::sync::Mutex::new(Vec::<(u64, f64)>::new()));
    let (counter, sampler) = (done.clone(), samples.clone());
    let step = ((items * repeat as usize) as u64 / 10).max(1);
    let hooks = RunHooks {
        on_item_complete: Some(on_item_complete(move |_, _| {
            let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
            if n % step == 0 {
                sampler.lock().unwrap().push((n, rss_mib()));
            }
            async { Ok(()) }
        })),
        ..Default::default()
    };
    let executor = Executor::new(store.clone()).with_process_item_slots(concurrency);
    let start = Instant::now();
    let summary = executor.execute(plan, hooks).await.unwrap();
    let secs = start.elapsed().as_secs_f64();
    let trials = items * repeat as usize;
    assert_eq!(summary.succeeded_count as usize, trials, "{summary:?}");

    println!(
        "backend={backend} items={items} repeat={repeat} concurrency={concurrency} target=echo scorers=exact-match,levenshtein,contains"
    );
    println!("trigger (create_run) latency: {trigger_ms:.2} ms");
    println!(
        "run: {secs:.2} s, {:.0} items/s end to end (target + 3 scorers + persisted results and scores)",
        trials as f64 / secs
    );
    println!("RSS before run: {rss_before:.1} MiB");
    for (n, rss) in samples.lock().unwrap().iter() {
        println!("RSS after {n:>9} items: {rss:.1} MiB");
    }
    println!(
        "peak RSS of the process (VmHWM, includes dataset loading): {:.1} MiB",
        peak_rss_mib()
    );

    if std::env::args().any(|a| a == "--rescore") {
        let run = create_rescore(
            &store,
            &catalog,
            TENANT,
            RescoreRequest {
                parent_run_id: summary.run_id.clone(),
                scorer_ids: vec![
                    "exact-match".into(),
                    "levenshtein".into(),
                    "contains".into(),
                ],
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let plan = plan_run(&catalog, TENANT, run, false).await.unwrap();
        let done = Arc::new(AtomicU64::new(0));
        let counter = done.clone();
        let hooks = RunHooks {
            on_item_complete: Some(on_item_complete(move |_, _| {
                counter.fetch_add(1, Ordering::Relaxed);
                async { Ok(()) }
            })),
            ..Default::default()
        };
        let start = Instant::now();
        let rescored = executor.execute(plan, hooks).await.unwrap();
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(rescored.succeeded_count as usize, trials, "{rescored:?}");
        println!(
            "rescore: {secs:.2} s, {:.0} items/s (outputs read from the stored run + 3 scorers + persisted results and scores)",
            trials as f64 / secs
        );
    }
}
