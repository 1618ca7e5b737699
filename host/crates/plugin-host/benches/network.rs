//! `cargo bench --workspace --bench network`: what the network seam costs
//! per outbound request, for BENCHMARKS.md.
//!
//! * the admission checks alone (grant check and `{{secret.NAME}}`
//!   substitution of one header), in a loop;
//! * a `net-probe` call that makes no request (the sandbox baseline), one
//!   plain request, and one request with a secret header, to a loopback
//!   server on 127.0.0.1; per call p50/p99 and mean.
//!
//! Set `ASSAY_BENCH_CALLS` to change the number of calls (default 2000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use assay_plugin_host::{
    HostConfig, Limits, NetworkAccess, NetworkGrant, NetworkLimits, PluginHost, PluginItem, Scheme,
    Secrets,
};
use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};

fn main() {
    let calls: usize = std::env::var("ASSAY_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(calls));
}

async fn run(calls: usize) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new().route("/ok", get(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let grant = NetworkGrant {
        hosts: vec![
            "api.openai.com".parse().unwrap(),
            "*.example.com".parse().unwrap(),
            format!("127.0.0.1:{port}").parse().unwrap(),
        ],
        allow_http: true,
        limits: NetworkLimits {
            max_requests: 1_000,
            ..NetworkLimits::default()
        },
        rate_limits: Vec::new(),
    };
    let secrets = Arc::new(Secrets::new().with("KEY", "sk-bench-0123456789abcdef"));
    admission(&grant, &secrets);

    let host = PluginHost::new(HostConfig::default()).expect("host");
    let probe = host
        .load_file(&assay_test_support::plugin_wasm("net-probe"))
        .expect("load net-probe");
    let access = NetworkAccess::new(grant, secrets);
    let url = format!("http://127.0.0.1:{port}/ok");
    let cases = [
        ("no request (sandbox baseline)", json!({})),
        ("1 request", json!({"url": url})),
        (
            "1 request + secret header",
            json!({"url": url, "headers": {"authorization": "Bearer {{secret.KEY}}"}}),
        ),
    ];
    println!("net-probe calls to a loopback server ({calls} calls each, sequential):");
    for (label, input) in cases {
        let item = PluginItem {
            id: "1".into(),
            input: input.clone(),
            ground_truth: None,
            metadata: None,
        };
        let mut times = Vec::with_capacity(calls);
        for i in 0..calls + 20 {
            let start = Instant::now();
            let out = probe
                .run_target_with_network(&item, None, &Limits::default(), &access)
                .await
                .expect("call");
            if i >= 20 {
                times.push(start.elapsed());
            }
            if input.get("url").is_some() {
                assert_eq!(out.output["results"][0]["status"], Value::from(200));
            }
        }
        report(label, &mut times);
    }
}

/// The checks `send_request` makes before connecting, without the sandbox.
fn admission(grant: &NetworkGrant, secrets: &Secrets) {
    let n = 1_000_000u32;
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(
            grant
                .check(Scheme::Https, std::hint::black_box("api.example.com"), 443)
                .is_ok(),
        );
    }
    let check = start.elapsed() / n;
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(
            secrets
                .substitute(std::hint::black_box("Bearer {{secret.KEY}}"))
                .unwrap(),
        );
    }
    let substitute = start.elapsed() / n;
    println!("grant check (3 patterns, wildcard hit): {check:?} per request");
    println!("secret substitution (one header): {substitute:?} per request");
}

fn report(label: &str, times: &mut [Duration]) {
    times.sort_unstable();
    let p = |q: f64| times[((times.len() as f64 - 1.0) * q) as usize];
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    println!(
        "  {label:32} p50 {:>9.1?}  p99 {:>9.1?}  mean {:>9.1?}",
        p(0.5),
        p(0.99),
        mean
    );
}
