//! The stub behaves like the providers it stands in for.

use std::time::Duration;

use assay_openai_stub::{Stub, StubConfig};
use serde_json::{Value, json};

async fn chat(stub: &Stub, content: &str, key: Option<&str>) -> (u16, Option<String>, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", stub.url()))
        .json(&json!({"model": "m1", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": content}]}));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, retry, resp.json().await.unwrap())
}

#[tokio::test]
async fn replies_with_the_last_user_message_and_counts_usage() {
    let stub = Stub::start(StubConfig::default()).await.unwrap();
    let (status, _, body) = chat(&stub, "two plus two", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["choices"][0]["message"]["content"], "two plus two");
    assert_eq!(body["usage"]["prompt_tokens"], 5);
    assert_eq!(body["usage"]["completion_tokens"], 3);
    assert_eq!(body["usage"]["total_tokens"], 8);
    let (_, _, scripted) = chat(&stub, r#"judge this STUB_REPLY: {"score": 0.5}"#, None).await;
    assert_eq!(
        scripted["choices"][0]["message"]["content"],
        r#"{"score": 0.5}"#
    );
    let stats = stub.stats();
    assert_eq!((stats.requests, stats.ok), (2, 2));
    assert_eq!(stats.models.get("m1"), Some(&2));
    // The stats sum the usage of the answers, as the bodies reported it.
    let reported = |b: &serde_json::Value, k: &str| b["usage"][k].as_u64().unwrap();
    let sum = |k: &str| reported(&body, k) + reported(&scripted, k);
    assert_eq!(
        stats.usage.get("m1"),
        Some(&assay_openai_stub::StubUsage {
            prompt_tokens: sum("prompt_tokens"),
            completion_tokens: sum("completion_tokens"),
            total_tokens: sum("total_tokens"),
            answers: 2,
        })
    );
}

#[tokio::test]
async fn first_requests_are_throttled_with_retry_after() {
    let stub = Stub::start(StubConfig {
        fail_first: 2,
        retry_after_secs: Some(3),
        ..StubConfig::default()
    })
    .await
    .unwrap();
    for _ in 0..2 {
        let (status, retry, body) = chat(&stub, "x", None).await;
        assert_eq!((status, retry.as_deref()), (429, Some("3")));
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Rate limit")
        );
    }
    assert_eq!(chat(&stub, "x", None).await.0, 200);
    assert_eq!(stub.stats().throttled, 2);
}

#[tokio::test]
async fn requests_above_the_in_flight_cap_get_429() {
    let stub = Stub::start(StubConfig {
        latency: Duration::from_millis(200),
        max_in_flight: Some(2),
        ..StubConfig::default()
    })
    .await
    .unwrap();
    let calls = (0..5).map(|_| chat(&stub, "x", None));
    let statuses: Vec<u16> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|(s, _, _)| s)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        2,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        3,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn a_wrong_key_is_refused_and_keys_are_recorded() {
    let stub = Stub::start(StubConfig {
        api_key: Some("sk-right".into()),
        ..StubConfig::default()
    })
    .await
    .unwrap();
    let (status, _, body) = chat(&stub, "x", Some("sk-wrong")).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["message"], "Incorrect API key provided");
    assert_eq!(chat(&stub, "x", Some("sk-right")).await.0, 200);
    assert_eq!(
        stub.stats().authorizations,
        ["Bearer sk-wrong", "Bearer sk-right"]
    );
}

#[tokio::test]
async fn a_client_that_goes_away_is_counted_as_abandoned() {
    let stub = Stub::start(StubConfig {
        latency: Duration::from_secs(10),
        ..StubConfig::default()
    })
    .await
    .unwrap();
    let slow = tokio::time::timeout(Duration::from_millis(200), chat(&stub, "x", None)).await;
    assert!(slow.is_err(), "the stub is still waiting");
    for _ in 0..50 {
        if stub.stats().abandoned == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("abandoned request not seen: {:?}", stub.stats());
}
