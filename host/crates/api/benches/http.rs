//! HTTP benchmark of `assay serve`, over loopback, in one process, with
//! authentication on (every request carries an API key, looked up by the
//! hash of its token, as in production):
//!
//! 1. trigger latency (`POST /api/datasets/{id}/runs`) on a 100k-item
//!    dataset, first with the scheduler idle (the tenant may not start runs,
//!    so every run stays `pending`), then while one run executes;
//! 2. `GET /api/datasets/{id}/runs/{runId}` throughput and latency under
//!    concurrent polling while a run executes.
//!
//! `cargo bench -p assay-api --bench http`. Knobs (environment):
//! `ASSAY_BENCH_ITEMS` (100000), `ASSAY_BENCH_TRIGGERS` (200),
//! `ASSAY_BENCH_POLL_SECS` (10), `ASSAY_BENCH_POLL_CONNS` (64).

use std::sync::Arc;
use std::time::{Duration, Instant};

use assay_api::{AuthMode, ServeConfig};
use assay_runner::AssemblySettings;
use assay_store::{DEFAULT_TENANT, NewDataset, NewItem, Role, Store, Tenant};
use serde_json::{Value, json};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn report(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len().max(1) as u32;
    println!(
        "{label}: n={} p50={} p99={} max={} mean={}",
        samples.len(),
        ms(percentile(&samples, 50.0)),
        ms(percentile(&samples, 99.0)),
        ms(*samples.last().unwrap_or(&Duration::ZERO)),
        ms(mean),
    );
}

async fn set_max_active_runs(store: &Arc<dyn Store>, n: i64) {
    let tenant = Tenant {
        max_active_runs: n,
        ..Tenant::with_defaults(DEFAULT_TENANT)
    };
    store.upsert_tenant(&tenant).await.expect("tenant limits");
}

async fn trigger_many(
    client: &reqwest::Client,
    token: &str,
    url: &str,
    n: u64,
) -> (Vec<Duration>, Vec<String>) {
    let body = json!({"targetType": "plugin", "targetId": "echo", "maxConcurrency": 8});
    let mut samples = Vec::with_capacity(n as usize);
    let mut ids = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let start = Instant::now();
        let resp = client
            .post(url)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("trigger");
        let status = resp.status();
        let answer: Value = resp.json().await.expect("trigger answer");
        samples.push(start.elapsed());
        assert_eq!(status, 202, "{answer}");
        assert_eq!(answer["status"], "pending");
        ids.push(answer["runId"].as_str().unwrap().to_string());
    }
    (samples, ids)
}

fn main() {
    let items = env_or("ASSAY_BENCH_ITEMS", 100_000);
    let triggers = env_or("ASSAY_BENCH_TRIGGERS", 200);
    let poll_secs = env_or("ASSAY_BENCH_POLL_SECS", 10);
    let conns = env_or("ASSAY_BENCH_POLL_CONNS", 64);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = ServeConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            assembly: AssemblySettings {
                database_url: format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display()),
                cache_dir: Some(dir.path().join("cache")),
                ..AssemblySettings::default()
            },
            max_active_runs: 1,
            grace: Duration::from_millis(500),
            auth: AuthMode::Keys,
            ..ServeConfig::default()
        };
        let server = assay_api::start(config).await.expect("server starts");
        let store = server.state().store().clone();
        let (_, token) =
            assay_store::tenancy::issue_api_key(store.as_ref(), DEFAULT_TENANT, Role::Member, None)
                .await
                .expect("API key");
        let token = token.as_str();
        // Phase 1 keeps every run pending: the tenant may not start any.
        set_max_active_runs(&store, 0).await;
        let echo = std::fs::read(assay_test_support::plugin_wasm("echo")).expect("echo plugin");
        server
            .state()
            .catalog()
            .register_bytes(DEFAULT_TENANT, echo)
            .await
            .expect("register echo");

        let dataset = store
            .create_dataset(
                DEFAULT_TENANT,
                NewDataset {
                    name: "bench".into(),
                    ..Default::default()
                },
            )
            .await
            .expect("dataset");
        let start = Instant::now();
        let chunk = 10_000u64;
        for base in (0..items).step_by(chunk as usize) {
            let batch: Vec<NewItem> = (base..(base + chunk).min(items))
                .map(|i| NewItem {
                    input: json!({"question": format!("what is {i} + {i}?")}),
                    expected_output: Some(json!(format!("{}", 2 * i))),
                    context: None,
                })
                .collect();
            store
                .add_items(DEFAULT_TENANT, &dataset.id, batch)
                .await
                .expect("add items");
        }
        println!(
            "setup: {items} items added via the store in {:.1} s",
            start.elapsed().as_secs_f64()
        );

        let client = reqwest::Client::new();
        let runs_url = format!("{}/api/datasets/{}/runs", server.url(), dataset.id);
        // Warm up the connection and the plugin cache.
        let (_, warm) = trigger_many(&client, token, &runs_url, 5).await;

        let (idle, pending) = trigger_many(&client, token, &runs_url, triggers).await;
        report(
            &format!("trigger latency with auth, {items}-item dataset, scheduler idle"),
            idle,
        );
        for id in warm.iter().chain(&pending) {
            store.request_cancel(DEFAULT_TENANT, id).await.expect("cancel a pending run");
        }

        // Phase 2: one run executes (100k items through echo) meanwhile.
        set_max_active_runs(&store, 1).await;
        let (_, first) = trigger_many(&client, token, &runs_url, 1).await;
        let run_url = format!("{runs_url}/{}", first[0]);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let run: Value = client
                .get(&run_url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if run["status"] == "running" || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let executing = server.state().active_runs();
        let (busy, _) = trigger_many(&client, token, &runs_url, triggers).await;
        report(
            &format!(
                "trigger latency with auth, {items}-item dataset, {executing} run executing"
            ),
            busy,
        );

        // Phase 3: many pollers on GET run while that run executes.
        let polling_until = Instant::now() + Duration::from_secs(poll_secs);
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let client = client.clone();
            let url = run_url.clone();
            let token = token.to_string();
            tasks.push(tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut errors = 0u64;
                while Instant::now() < polling_until {
                    let start = Instant::now();
                    match client.get(&url).bearer_auth(&token).send().await {
                        Ok(resp) if resp.status().is_success() => {
                            let _ = resp.bytes().await;
                            samples.push(start.elapsed());
                        }
                        _ => errors += 1,
                    }
                }
                (samples, errors)
            }));
        }
        let started = Instant::now();
        let mut all = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (s, e) = t.await.expect("poller");
            all.extend(s);
            errors += e;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let run: Value = client
            .get(&run_url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        println!(
            "GET run polling: {conns} connections for {elapsed:.1} s: {:.0} requests/s ({} ok, {errors} errors); \
             the executing run reached {} of {} items",
            all.len() as f64 / elapsed,
            all.len(),
            run["succeededCount"],
            run["totalItems"],
        );
        report("GET run latency under polling", all);

        server.state().cancel_run(DEFAULT_TENANT, &first[0]).await.ok();
        server.shutdown().await.expect("shutdown");
    });
}
