//! The output cache over HTTP: `cache: true` on a trigger, the results and
//! summary that say which outputs were reused, and `/api/cache`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestServer, assert_error};

async fn run_to_end(s: &TestServer, ds: &str, body: Value) -> Value {
    let (status, t) = s.post(&format!("/api/datasets/{ds}/runs"), body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{t}");
    let id = t["runId"].as_str().unwrap();
    let seen = s
        .poll_run(ds, id, Duration::from_millis(100), Duration::from_secs(30))
        .await;
    seen.last().unwrap().clone()
}

/// The value of the sample of `name` whose line holds every label.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_run_reuses_outputs_and_the_cache_is_shown_and_cleared() {
    let mut s = TestServer::start_with(|c| {
        c.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    // A tenant of its own: the metrics recorder is shared by the process.
    s.act_as("cache-tenant").await;
    s.upload_plugin("echo").await;
    s.upload_plugin("exact-match").await;
    let items = (0..4)
        .map(|i| json!({"input": {"q": i}, "expectedOutput": {"q": i}}))
        .collect();
    let ds = s.dataset_with_items("cached", items).await;
    let body = json!({"targetType": "plugin", "targetId": "echo",
                      "scorerIds": ["exact-match"], "cache": true});

    let first = run_to_end(&s, &ds, body.clone()).await;
    assert_eq!(first["status"], "completed", "{first}");
    let first_id = first["id"].as_str().unwrap();
    assert_eq!(first["config"]["options"]["cache"], true, "{first}");
    let (status, stats) = s.get("/api/cache").await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(stats["entries"], 4, "{stats}");
    assert_eq!(stats["limitBytes"], 1i64 << 30, "{stats}");
    let (_, tenant) = s.get("/api/tenant").await;
    assert_eq!(tenant["usage"]["cacheBytes"], stats["bytes"], "{tenant}");
    assert_eq!(tenant["limits"]["cacheBytes"], 1i64 << 30, "{tenant}");

    let second = run_to_end(&s, &ds, body.clone()).await;
    let second_id = second["id"].as_str().unwrap();
    let results = s.all_results(&ds, second_id, 100).await;
    assert_eq!(results.len(), 4);
    for r in &results {
        assert_eq!(r["targetMetadata"]["cached"]["fromRun"], first_id, "{r}");
        assert_eq!(r["output"], r["input"], "{r}");
        assert_eq!(r["scores"][0]["score"], 1.0, "scored as usual: {r}");
    }
    let (_, summary) = s
        .get(&format!("/api/datasets/{ds}/runs/{second_id}/summary"))
        .await;
    assert_eq!(summary["cachedCount"], 4, "{summary}");
    let (_, summary) = s
        .get(&format!("/api/datasets/{ds}/runs/{first_id}/summary"))
        .await;
    assert_eq!(summary["cachedCount"], 0, "{summary}");

    let (status, cleared) = s.delete("/api/cache").await;
    assert_eq!(status, StatusCode::OK, "{cleared}");
    assert_eq!(cleared["entries"], 4, "{cleared}");
    assert_eq!(s.get("/api/cache").await.1["entries"], 0);
    let third = run_to_end(&s, &ds, body).await;
    let results = s.all_results(&ds, third["id"].as_str().unwrap(), 100).await;
    assert!(
        results
            .iter()
            .all(|r| r["targetMetadata"].get("cached").is_none()),
        "{results:?}"
    );

    // Lookups by result: 4 misses, 4 hits, 4 misses after the clear.
    let url = format!("http://{}/metrics", s.metrics_addr().unwrap());
    let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let lookups = |result: &str| {
        let label = format!("result=\"{result}\"");
        sample(
            &text,
            "assay_output_cache_lookups_total",
            &["tenant=\"cache-tenant\"", &label],
        )
    };
    assert_eq!(lookups("hit"), Some(4.0), "{text}");
    assert_eq!(lookups("miss"), Some(8.0), "{text}");

    // `cache` is a boolean; a query on the routes is refused.
    let (status, body) = s
        .post(
            &format!("/api/datasets/{ds}/runs"),
            json!({"targetType": "plugin", "targetId": "echo", "cache": "yes"}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");
    let (status, body) = s.delete("/api/cache?tenant=other").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}
