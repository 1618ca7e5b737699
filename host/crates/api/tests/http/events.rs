//! The live result stream (Server-Sent Events).

use std::time::Duration;

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestServer, assert_error};

#[derive(Debug, Default, Clone)]
struct SseEvent {
    event: String,
    id: Option<String>,
    data: Value,
}

/// Reads events until `end` (inclusive) or the stream closes.
async fn read_events(resp: reqwest::Response) -> Vec<SseEvent> {
    assert_eq!(resp.status(), StatusCode::OK);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    let mut events = Vec::new();
    let read = async {
        while let Some(chunk) = stream.next().await {
            buf.push_str(std::str::from_utf8(&chunk.expect("stream chunk")).unwrap());
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                let mut ev = SseEvent::default();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        ev.event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        ev.id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if ev.event.is_empty() {
                    continue; // keep-alive comment
                }
                ev.data = serde_json::from_str(&data).unwrap_or(Value::Null);
                let done = ev.event == "end";
                events.push(ev);
                if done {
                    return;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the stream ends");
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_stream_as_they_complete_and_resume_after_last_event_id() {
    let s = TestServer::start().await;
    s.upload_plugin("hostile-target").await;
    let total = 12;
    let items: Vec<Value> = (0..total).map(|i| json!({"input": {"n": i}})).collect();
    let ds = s.dataset_with_items("sse", items).await;
    let (status, t) = s
        .post(
            &format!("/api/datasets/{ds}/runs"),
            json!({"targetType": "plugin", "targetId": "hostile-target", "maxConcurrency": 2,
                   "targetConfig": {"mode": "sleep", "ms": 100}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{t}");
    let run_id = t["runId"].as_str().unwrap().to_string();
    let events_path = format!("/api/datasets/{ds}/runs/{run_id}/events");

    // Live: connected while the run is pending or running.
    let resp = s.request(Method::GET, &events_path).send().await.unwrap();
    let events = read_events(resp).await;
    assert_eq!(events[0].event, "run");
    assert!(
        matches!(
            events[0].data["status"].as_str(),
            Some("pending" | "running")
        ),
        "{:?}",
        events[0]
    );
    let end = events.last().unwrap();
    assert_eq!(end.event, "end");
    assert_eq!(end.data["status"], "completed");
    assert_eq!(end.data["succeededCount"], total);
    let results: Vec<&SseEvent> = events.iter().filter(|e| e.event == "result").collect();
    assert_eq!(results.len(), total, "every result arrives once");
    let mut indexes: Vec<i64> = results
        .iter()
        .map(|e| e.data["itemIndex"].as_i64().unwrap())
        .collect();
    indexes.sort();
    assert_eq!(indexes, (0..total as i64).collect::<Vec<_>>());
    let seqs: Vec<i64> = results
        .iter()
        .map(|e| e.id.as_ref().unwrap().parse().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "ids increase: {seqs:?}"
    );
    for e in &results {
        assert_eq!(e.data["runId"], run_id.as_str());
        assert_eq!(e.data["output"], e.data["input"]);
    }
    // Progress events in between carry growing counts.
    let progress: Vec<i64> = events
        .iter()
        .filter(|e| e.event == "run")
        .map(|e| e.data["succeededCount"].as_i64().unwrap())
        .collect();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");

    // Reconnecting after the 5th result sends only the later ones.
    let resp = s
        .request(Method::GET, &events_path)
        .header("last-event-id", seqs[4].to_string())
        .send()
        .await
        .unwrap();
    let resumed = read_events(resp).await;
    let later: Vec<i64> = resumed
        .iter()
        .filter(|e| e.event == "result")
        .map(|e| e.id.as_ref().unwrap().parse().unwrap())
        .collect();
    assert_eq!(later, seqs[5..].to_vec());
    assert_eq!(resumed.last().unwrap().event, "end");
    // `?after=` does the same for clients that cannot set headers.
    let resp = s
        .request(Method::GET, &format!("{events_path}?after={}", seqs[10]))
        .send()
        .await
        .unwrap();
    let tail = read_events(resp).await;
    assert_eq!(tail.iter().filter(|e| e.event == "result").count(), 1);

    let (status, body) = s
        .send(
            s.request(Method::GET, &events_path)
                .header("last-event-id", "abc"),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_stream_does_not_block_shutdown() {
    let s = TestServer::start().await;
    s.upload_plugin("hostile-target").await;
    let ds = s
        .dataset_with_items("slow", vec![json!({"input": 1}), json!({"input": 2})])
        .await;
    let (_, t) = s
        .post(
            &format!("/api/datasets/{ds}/runs"),
            json!({"targetType": "plugin", "targetId": "hostile-target", "maxConcurrency": 1,
                   "targetConfig": {"mode": "sleep", "ms": 20000}}),
        )
        .await;
    let run_id = t["runId"].as_str().unwrap();
    let resp = s
        .request(
            Method::GET,
            &format!("/api/datasets/{ds}/runs/{run_id}/events"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let started = std::time::Instant::now();
    let (stopped, _) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(15), s.stop()),
        async move { resp.bytes().await }
    );
    assert!(stopped.is_ok(), "shutdown finished");
    // Grace is 5 s in tests: the 20 s item is cut, the stream is closed.
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
}

/// A run of `n` items that each sleep `ms` (one at a time); returns the
/// events path.
async fn slow_run(s: &TestServer, n: usize, ms: u64) -> String {
    s.upload_plugin("hostile-target").await;
    let items: Vec<Value> = (0..n).map(|i| json!({"input": {"n": i}})).collect();
    let ds = s.dataset_with_items("followed", items).await;
    let (status, t) = s
        .post(
            &format!("/api/datasets/{ds}/runs"),
            json!({"targetType": "plugin", "targetId": "hostile-target", "maxConcurrency": 1,
                   "targetConfig": {"mode": "sleep", "ms": ms}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{t}");
    format!(
        "/api/datasets/{ds}/runs/{}/events",
        t["runId"].as_str().unwrap()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stream_of_a_run_is_fed_by_one_poller() {
    let s = TestServer::start().await;
    let total = 10;
    let path = slow_run(&s, total, 100).await;
    let mut streams = Vec::new();
    for _ in 0..20 {
        let resp = s.request(Method::GET, &path).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        streams.push(resp);
    }
    assert_eq!(s.state().events().streams(), 20);
    assert_eq!(
        s.state().events().pollers(),
        1,
        "20 streams of one run share one poller of the database"
    );
    let all = futures::future::join_all(streams.into_iter().map(read_events)).await;
    for events in all {
        assert_eq!(events.last().unwrap().event, "end");
        assert_eq!(events.last().unwrap().data["status"], "completed");
        let seqs: Vec<i64> = events
            .iter()
            .filter(|e| e.event == "result")
            .map(|e| e.id.as_ref().unwrap().parse().unwrap())
            .collect();
        assert_eq!(seqs.len(), total, "every result once: {seqs:?}");
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    }
    // The poller and the streams' places are given back.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while s.state().events().pollers() + s.state().events().streams() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "poller or streams left"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_are_capped_per_tenant_and_in_total() {
    let mut s = TestServer::start_with(|c| {
        c.limits.max_event_streams = 3;
        c.limits.max_event_streams_per_tenant = 2;
    })
    .await;
    let path = slow_run(&s, 2, 20000).await;
    let a1 = s.request(Method::GET, &path).send().await.unwrap();
    let a2 = s.request(Method::GET, &path).send().await.unwrap();
    assert_eq!(a1.status(), StatusCode::OK);
    assert_eq!(a2.status(), StatusCode::OK);
    let r = s.request(Method::GET, &path).send().await.unwrap();
    assert_eq!(r.headers()["retry-after"], "5");
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_error(
        status,
        &body,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_streams",
    );

    // Another tenant has its own cap, but the process's is shared.
    s.act_as("other").await;
    let other = slow_run(&s, 2, 20000).await;
    let b1 = s.request(Method::GET, &other).send().await.unwrap();
    assert_eq!(b1.status(), StatusCode::OK);
    let (status, body) = s.send(s.request(Method::GET, &other)).await;
    assert_error(
        status,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "too_many_streams",
    );

    // A closed stream gives its place back.
    drop(b1);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = s.request(Method::GET, &other).send().await.unwrap();
        if r.status() == StatusCode::OK {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {}", r.status());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop((a1, a2));
}
