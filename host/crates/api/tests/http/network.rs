//! Network plugins run by the server, end to end in the sandbox against the
//! OpenAI-compatible stub on loopback: a cancel stops requests in flight,
//! the `llm-judge` scorer stores the judge's scores and reasons, and the run
//! summary sums the target's token usage and, apart, the judge's.

use std::time::{Duration, Instant};

use assay_openai_stub::{Stub, StubConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::TestServer;

/// Grants `plugin` the stub's address (plain http).
async fn grant_stub(s: &TestServer, plugin: &str, stub: &Stub) {
    let (status, body) = s
        .put(
            &format!("/api/plugins/{plugin}/grant"),
            json!({"hosts": [stub.addr().to_string()], "allowHttp": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn trigger(s: &TestServer, ds: &str, body: Value) -> String {
    let (status, run) = s.post(&format!("/api/datasets/{ds}/runs"), body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    run["runId"].as_str().unwrap().to_string()
}

fn chat_config(stub: &Stub) -> Value {
    json!({"model": "stub-model", "baseUrl": format!("{}/v1", stub.url())})
}

/// Requests the stub is answering right now.
fn in_flight(stub: &Stub) -> u64 {
    let s = stub.stats();
    s.requests - s.ok - s.throttled - s.errors - s.abandoned
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_stops_the_requests_in_flight() {
    // Answers only after a minute: the run can end sooner only by
    // dropping its requests.
    let stub = Stub::start(StubConfig {
        latency: Duration::from_secs(60),
        ..StubConfig::default()
    })
    .await
    .unwrap();
    let s = TestServer::start().await;
    s.upload_plugin("openai-chat").await;
    grant_stub(&s, "openai-chat", &stub).await;
    let items = (0..6)
        .map(|i| json!({"input": format!("question {i}")}))
        .collect();
    let ds = s.dataset_with_items("slow-model", items).await;
    let run = trigger(
        &s,
        &ds,
        json!({"targetType": "plugin", "targetId": "openai-chat", "maxConcurrency": 3,
               "targetConfig": chat_config(&stub)}),
    )
    .await;

    let deadline = Instant::now() + Duration::from_secs(60);
    while in_flight(&stub) < 3 {
        assert!(Instant::now() < deadline, "{:?}", stub.stats());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cancelled_at = Instant::now();
    let (status, body) = s
        .post_empty(&format!("/api/datasets/{ds}/runs/{run}/cancel"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let seen = s
        .poll_run(
            &ds,
            &run,
            Duration::from_millis(50),
            Duration::from_secs(15),
        )
        .await;
    let last = seen.last().unwrap();
    assert_eq!(last["status"], "cancelled", "{last}");
    assert_eq!(last["skippedCount"], 6, "no request was answered: {last}");
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(15),
        "the run waited for its requests"
    );
    // The server is still up, so only the cancel can have closed the
    // connections: the stub sees each of its three requests abandoned.
    let deadline = Instant::now() + Duration::from_secs(10);
    while stub.stats().abandoned < 3 {
        assert!(Instant::now() < deadline, "{:?}", stub.stats());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = stub.stats();
    assert_eq!((stats.requests, stats.abandoned, stats.ok), (3, 3, 0));
}

/// The words of `text` after the stub's `STUB_REPLY:` marker, or of all of
/// it: the stub's reply, and so its count of completion tokens.
fn reply_words(text: &str) -> u64 {
    let reply = match text.find("STUB_REPLY:") {
        Some(at) => text[at + "STUB_REPLY:".len()..].trim(),
        None => text,
    };
    reply.split_whitespace().count() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_judge_scores_in_the_sandbox_and_the_summary_sums_token_usage() {
    let stub = Stub::start(StubConfig::default()).await.unwrap();
    let s = TestServer::start().await;
    s.upload_plugin("openai-chat").await;
    s.upload_plugin("llm-judge").await;
    grant_stub(&s, "openai-chat", &stub).await;
    grant_stub(&s, "llm-judge", &stub).await;
    // Each input scripts the stub's reply: the target's answer is the
    // verdict, and the judge (whose message quotes the input) gets the
    // same verdict back.
    let inputs = [
        r#"STUB_REPLY: {"score": 0.8, "reason": "names the right city"}"#,
        "STUB_REPLY: ```json\n{\"score\": 0, \"reason\": \"wrong city\"}\n```",
        r#"STUB_REPLY: {"score": 7, "reason": "off the scale"}"#,
    ];
    let items = inputs
        .iter()
        .map(|i| json!({"input": i, "groundTruth": "Paris"}))
        .collect();
    let ds = s.dataset_with_items("judged", items).await;
    let judge = json!({"rubric": "Names the capital of France.", "model": "judge-model",
                       "baseUrl": format!("{}/v1", stub.url())});
    let run = trigger(
        &s,
        &ds,
        json!({"targetType": "plugin", "targetId": "openai-chat", "scorerIds": ["llm-judge"],
               "targetConfig": chat_config(&stub), "scorerConfigs": {"llm-judge": judge}}),
    )
    .await;
    let seen = s
        .poll_run(
            &ds,
            &run,
            Duration::from_millis(50),
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(seen.last().unwrap()["status"], "completed");

    let mut results = s.all_results(&ds, &run, 10).await;
    results.sort_by_key(|r| r["itemIndex"].as_i64());
    let score = |i: usize| &results[i]["scores"][0];
    assert_eq!(score(0)["scorerId"], "llm-judge");
    assert_eq!(score(0)["score"], 0.8, "{}", results[0]);
    assert_eq!(score(0)["reason"], "names the right city");
    assert_eq!(score(1)["score"], 0.0, "a fenced verdict: {}", results[1]);
    assert_eq!(score(1)["reason"], "wrong city");
    assert_eq!(score(2)["score"], Value::Null, "{}", results[2]);
    let error = score(2)["error"].as_str().unwrap_or_default();
    assert!(error.contains("outside 0 to 1"), "{error}");
    assert_eq!(
        stub.stats().models["judge-model"],
        3,
        "one verdict per item"
    );

    // The target's usage (the stub counts words): the prompt is the input,
    // the reply what follows the marker. The judge's calls are not the
    // target's.
    let (status, summary) = s
        .get(&format!("/api/datasets/{ds}/runs/{run}/summary"))
        .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    let prompt: u64 = inputs
        .iter()
        .map(|i| i.split_whitespace().count() as u64)
        .sum();
    let completion: u64 = inputs.iter().map(|i| reply_words(i)).sum();
    assert_eq!(
        summary["tokenUsage"],
        json!({"promptTokens": prompt, "completionTokens": completion,
               "totalTokens": prompt + completion, "items": 3}),
        "{summary}"
    );

    // The judge's usage, apart from the target's: the sum of what its
    // scores' metadata reported. The verdict that failed (score 7) has no
    // metadata, so its call is not in the sum.
    let judged: Vec<&Value> = results
        .iter()
        .filter_map(|r| r["scores"][0]["metadata"].get("usage"))
        .collect();
    assert_eq!(judged.len(), 2, "{results:?}");
    let sum = |k: &str| -> u64 { judged.iter().map(|u| u[k].as_u64().unwrap()).sum() };
    let want = json!({"promptTokens": sum("promptTokens"),
        "completionTokens": sum("completionTokens"), "totalTokens": sum("totalTokens"),
        "scores": 2});
    assert!(sum("totalTokens") > 0);
    assert_eq!(summary["scorerTokenUsage"], want, "{summary}");
    assert_eq!(summary["scorers"][0]["tokenUsage"], want, "{summary}");
    // The stub answered three judge requests: the two counted ones and the
    // failed verdict's.
    let stub_judge = stub.stats().usage["judge-model"];
    assert_eq!(stub_judge.answers, 3);
    assert!(stub_judge.total_tokens > sum("totalTokens"));
}

/// Grants `plugin` the stub's address with `rate_limits`.
async fn grant_stub_limited(s: &TestServer, plugin: &str, stub: &Stub, rate_limits: Value) {
    let host = stub.addr().to_string();
    let (status, body) = s
        .put(
            &format!("/api/plugins/{plugin}/grant"),
            json!({"hosts": [host], "allowHttp": true, "rateLimits": rate_limits}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_per_second_paces_all_of_a_runs_calls_together() {
    let stub = Stub::start(StubConfig::default()).await.unwrap();
    let s = TestServer::start().await;
    s.upload_plugin("openai-chat").await;
    let host = stub.addr().to_string();
    grant_stub_limited(
        &s,
        "openai-chat",
        &stub,
        json!([{"host": host, "requestsPerSecond": 10}]),
    )
    .await;
    let items = (0..11)
        .map(|i| json!({"input": format!("q {i}")}))
        .collect();
    let ds = s.dataset_with_items("paced", items).await;
    let started = Instant::now();
    let run = trigger(
        &s,
        &ds,
        json!({"targetType": "plugin", "targetId": "openai-chat", "maxConcurrency": 8,
               "targetConfig": chat_config(&stub)}),
    )
    .await;
    let seen = s
        .poll_run(
            &ds,
            &run,
            Duration::from_millis(50),
            Duration::from_secs(60),
        )
        .await;
    let last = seen.last().unwrap();
    assert_eq!(last["status"], "completed", "{last}");
    assert_eq!(last["succeededCount"], 11, "paced, never refused: {last}");
    // 11 requests at 10/s: 10 gaps of 100 ms, whatever the concurrency.
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1000), "took {took:?}");
    let stats = stub.stats();
    assert_eq!((stats.requests, stats.ok), (11, 11));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_token_budget_holds_the_next_request_until_cancelled() {
    let stub = Stub::start(StubConfig::default()).await.unwrap();
    let s = TestServer::start().await;
    s.upload_plugin("openai-chat").await;
    let host = stub.addr().to_string();
    // The first answer reports more tokens than the minute's budget.
    grant_stub_limited(
        &s,
        "openai-chat",
        &stub,
        json!([{"host": host, "tokensPerMinute": 5}]),
    )
    .await;
    let items = (0..3)
        .map(|i| json!({"input": format!("a question of six words {i}")}))
        .collect();
    let ds = s.dataset_with_items("budget", items).await;
    let run = trigger(
        &s,
        &ds,
        json!({"targetType": "plugin", "targetId": "openai-chat", "maxConcurrency": 1,
               "targetConfig": chat_config(&stub)}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while stub.stats().ok < 1 {
        assert!(Instant::now() < deadline, "{:?}", stub.stats());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        stub.stats().requests,
        1,
        "the second request waits for the minute to pass"
    );
    let (_, body) = s.get(&format!("/api/datasets/{ds}/runs/{run}")).await;
    assert_eq!(body["status"], "running", "{body}");
    assert_eq!(body["succeededCount"], 1, "{body}");
    // A request waiting for its turn is cancelled at once.
    let (status, body) = s
        .post_empty(&format!("/api/datasets/{ds}/runs/{run}/cancel"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let seen = s
        .poll_run(
            &ds,
            &run,
            Duration::from_millis(50),
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(seen.last().unwrap()["status"], "cancelled");
    assert_eq!(stub.stats().requests, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_with_a_bad_rate_limit_is_refused_naming_it() {
    let s = TestServer::start().await;
    s.upload_plugin("openai-chat").await;
    for (bad, says) in [
        (
            json!({"host": "api.openai.com", "requestsPerSecond": 0}),
            "not a rate",
        ),
        (json!({"host": "api.openai.com"}), "neither"),
        (
            json!({"host": "api.openai.com", "tokensPerMinit": 5}),
            "tokensPerMinit",
        ),
    ] {
        let (status, body) = s
            .put(
                "/api/plugins/openai-chat/grant",
                json!({"hosts": ["api.openai.com"], "rateLimits": [bad]}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.to_string().contains(says), "{body}");
    }
    let (_, plugin) = s.get("/api/plugins/openai-chat").await;
    assert_eq!(plugin["networkGrant"], Value::Null, "nothing was stored");
}
