//! Fair share over real HTTP: two tenants with their own keys share one
//! server; a small run of one tenant does not wait for the other's queue.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::TestServer;

const B: &str = "tenant-b";

/// `n` items whose input is their index.
fn items(n: usize) -> Vec<Value> {
    (0..n).map(|i| json!({"input": {"q": i}})).collect()
}

/// Triggers a run of the sleeping target on `ds`; returns its id.
async fn trigger(s: &TestServer, ds: &str, sleep_ms: u64, concurrency: u64) -> String {
    let (status, t) = s
        .post(
            &format!("/api/datasets/{ds}/runs"),
            json!({"targetType": "plugin", "targetId": "hostile-target",
                   "maxConcurrency": concurrency,
                   "targetConfig": {"mode": "sleep", "ms": sleep_ms}}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{t}");
    t["runId"].as_str().unwrap().to_string()
}

async fn run(s: &TestServer, ds: &str, id: &str) -> Value {
    let (status, run) = s.get(&format!("/api/datasets/{ds}/runs/{id}")).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{run}");
    run
}

/// Tenant A (`default`) queues four runs of 60 items of 100 ms (at least
/// 1.5 s each) on a server with two run slots and eight item slots; once
/// A's first runs are executing, tenant B, with its own key, triggers a
/// 50-item run. B's run must be finished while A's first run is still
/// going and A's last two runs are still pending: it neither waited for A's
/// queue to drain nor for A's runs to hand back their slots one by one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_small_run_does_not_wait_for_another_tenants_queue() {
    let mut s = TestServer::start_with(|c| {
        c.max_active_runs = 2;
        c.assembly.process_item_slots = 8;
    })
    .await;
    let (_, tenant) = s.get("/api/tenant").await;
    assert_eq!(
        tenant["limits"]["weight"], 1,
        "the default weight: {tenant}"
    );

    s.upload_plugin("hostile-target").await;
    let a_ds = s.dataset_with_items("a-queue", items(60)).await;
    let mut queue = Vec::new();
    for _ in 0..4 {
        queue.push(trigger(&s, &a_ds, 100, 4).await);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let first = run(&s, &a_ds, &queue[0]).await;
        let second = run(&s, &a_ds, &queue[1]).await;
        if first["succeededCount"].as_i64() >= Some(1) && second["status"] == "running" {
            break;
        }
        assert!(Instant::now() < deadline, "A's runs never started: {first}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let a_token = s.token.clone();

    s.act_as(B).await;
    s.upload_plugin("hostile-target").await;
    let b_ds = s.dataset_with_items("small", items(50)).await;
    let started = Instant::now();
    let small = trigger(&s, &b_ds, 10, 5).await;
    let done = s
        .poll_run(
            &b_ds,
            &small,
            Duration::from_millis(20),
            Duration::from_secs(30),
        )
        .await;
    let took = started.elapsed();
    let done = done.last().unwrap();
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["succeededCount"], 50, "{done}");

    s.token = a_token;
    let first = run(&s, &a_ds, &queue[0]).await;
    assert_eq!(
        first["status"], "running",
        "B's run ({took:?}) waited for A's first run to finish: {first}"
    );
    for id in &queue[2..] {
        let queued = run(&s, &a_ds, id).await;
        assert_eq!(
            queued["status"], "pending",
            "B's run ({took:?}) waited for A's queue to be claimed: {queued}"
        );
    }
    for id in &queue {
        s.post_empty(&format!("/api/datasets/{a_ds}/runs/{id}/cancel"))
            .await;
    }
    s.stop().await;
}
