//! `GET /metrics` on the metrics address: Prometheus text with the items,
//! plugin calls, result writes and runs of a real run; never on the API's
//! address.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::TestServer;

/// The value of the first sample whose line starts with `name{` and holds
/// every label of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_a_run_and_stay_off_the_api_address() {
    let mut s = TestServer::start_with(|c| {
        c.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    // A tenant of its own: the recorder is shared by the test process.
    s.act_as("metrics-tenant").await;
    s.upload_plugin("hostile-target").await;
    let total = 7;
    let items: Vec<Value> = (0..total).map(|i| json!({"input": {"n": i}})).collect();
    let ds = s.dataset_with_items("metrics", items).await;
    let (status, t) = s
        .post(
            &format!("/api/datasets/{ds}/runs"),
            json!({"targetType": "plugin", "targetId": "hostile-target",
                   "targetConfig": {"mode": "sleep", "ms": 10}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{t}");
    let run = t["runId"].as_str().unwrap();
    s.poll_run(&ds, run, Duration::from_millis(50), Duration::from_secs(60))
        .await;

    let metrics_url = format!(
        "http://{}/metrics",
        s.metrics_addr().expect("metrics address")
    );
    let r = reqwest::get(&metrics_url).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.text().await.unwrap();
    let tenant = "tenant=\"metrics-tenant\"";
    assert_eq!(
        sample(
            &text,
            "assay_items_total",
            &[tenant, "outcome=\"completed\""]
        ),
        Some(total as f64),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "assay_plugin_call_duration_seconds_count",
            &[
                tenant,
                "plugin=\"hostile-target\"",
                "kind=\"target\"",
                "outcome=\"ok\""
            ]
        ),
        Some(total as f64),
        "{text}"
    );
    // Every call slept 10 ms: none is in the 5 ms bucket, all in 25 ms's
    // or above.
    assert_eq!(
        sample(
            &text,
            "assay_plugin_call_duration_seconds_bucket",
            &[tenant, "plugin=\"hostile-target\"", "le=\"0.005\""]
        ),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "assay_runs_finished_total",
            &[tenant, "status=\"completed\""]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "assay_runs", &[tenant, "state=\"pending\""]),
        Some(0.0),
        "{text}"
    );
    assert!(
        sample(&text, "assay_result_write_batch_size_count", &[]).unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    assert!(
        sample(&text, "assay_result_write_duration_seconds_count", &[]).unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    assert!(
        sample(&text, "assay_plugin_compiles_total", &[]).unwrap_or(0.0)
            + sample(&text, "assay_plugin_cache_loads_total", &[]).unwrap_or(0.0)
            >= 1.0,
        "{text}"
    );
    assert!(
        sample(&text, "assay_http_connections_open", &[]).is_some(),
        "{text}"
    );

    // Not on the API's address: a tenant's key must not read other
    // tenants' labels.
    let (status, _) = s.get("/metrics").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
