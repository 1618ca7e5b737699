//! Plugin upload, listing and inspection.

use reqwest::{Method, StatusCode};

use crate::common::{TestServer, assert_error};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_are_uploaded_validated_listed_and_inspected() {
    let mut s = TestServer::start().await;
    let echo = s.upload_plugin("echo").await;
    assert_eq!(echo["id"], "echo");
    assert_eq!(echo["kind"], "target");
    assert!(echo["digest"].as_str().unwrap().starts_with("sha256:"));
    let scorer = s.upload_plugin("exact-match").await;
    assert_eq!(scorer["kind"], "scorer");
    // Uploading the same component again replaces it (same id, same digest).
    let again = s.upload_plugin("echo").await;
    assert_eq!(again["digest"], echo["digest"]);

    let (status, list) = s.get("/api/plugins").await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<_> = list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec!["echo", "exact-match"]);
    assert_eq!(list["pagination"]["total"], 2);

    let (status, detail) = s.get("/api/plugins/exact-match").await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert!(
        detail["world"].as_str().unwrap().contains("scorer"),
        "{detail}"
    );
    assert!(!detail["exports"].as_array().unwrap().is_empty());

    let upload = |bytes: Vec<u8>, ct: &'static str| {
        s.request(Method::POST, "/api/plugins")
            .header("content-type", ct)
            .body(bytes)
    };
    let (status, body) = s
        .send(upload(b"hello, not wasm".to_vec(), "application/wasm"))
        .await;
    let message = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_plugin",
    );
    assert!(message.contains("not a WebAssembly component"), "{message}");
    let old = std::fs::read(assay_test_support::plugin_wasm("old-contract")).unwrap();
    let (status, body) = s.send(upload(old, "application/octet-stream")).await;
    let message = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_plugin",
    );
    assert!(message.contains("contract"), "{message}");
    let (status, body) = s.send(upload(b"{}".to_vec(), "application/json")).await;
    assert_error(
        status,
        &body,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let (status, body) = s.send(upload(Vec::new(), "application/wasm")).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    let (_, list) = s.get("/api/plugins").await;
    assert_eq!(
        list["pagination"]["total"], 2,
        "failed uploads register nothing"
    );

    // Plugins belong to a tenant.
    s.act_as("other").await;
    let (status, body) = s.get("/api/plugins/echo").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    s.act_as("default").await;

    let (status, _) = s.delete("/api/plugins/echo").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = s.get("/api/plugins/echo").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_dirs_are_registered_at_start() {
    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(
        assay_test_support::plugin_wasm("echo"),
        plugins.path().join("echo.wasm"),
    )
    .unwrap();
    std::fs::write(plugins.path().join("broken.wasm"), b"garbage").unwrap();
    let dir = plugins.path().to_path_buf();
    let s = TestServer::start_with(|c| c.plugin_dirs = vec![dir]).await;
    let (status, list) = s.get("/api/plugins").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        list["pagination"]["total"], 1,
        "the broken file is skipped: {list}"
    );
    assert_eq!(list["plugins"][0]["id"], "echo");
    assert_eq!(list["plugins"][0]["shared"], true, "{list}");
    s.stop().await;
}

/// A component over the upload limit (48 MiB by default, under the 64 MiB
/// body limit) is refused with 413 naming the limit, and nothing is
/// registered; the client gets the answer, not a reset connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_upload_is_refused_naming_the_limit() {
    let s = TestServer::start().await;
    let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
    bytes.resize(49 << 20, 0);
    let (status, body) = s
        .send(
            s.request(Method::POST, "/api/plugins")
                .header("content-type", "application/wasm")
                .body(bytes),
        )
        .await;
    let message = assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    assert_eq!(
        message,
        "the component is 51380224 bytes, over the upload limit of 50331648 bytes"
    );
    let (_, list) = s.get("/api/plugins").await;
    assert_eq!(list["pagination"]["total"], 0);
}

/// `bytes` with a custom section appended: the same plugin under another
/// digest, so every copy is compiled.
fn with_custom_section(mut bytes: Vec<u8>, tag: u32) -> Vec<u8> {
    let name = b"assay-test";
    let mut payload = vec![name.len() as u8];
    payload.extend_from_slice(name);
    payload.extend_from_slice(&tag.to_le_bytes());
    bytes.push(0); // custom section id
    bytes.push(payload.len() as u8); // LEB128, under 128
    bytes.extend_from_slice(&payload);
    bytes
}

/// Twenty concurrent uploads of a large component (each a different digest,
/// so twenty compiles behind the compile semaphore) while `/health` is
/// polled: every upload is registered and `/health` keeps answering while
/// they compile. Prints the `/health` latencies it saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_keeps_answering_during_twenty_concurrent_uploads() {
    // The compile timeout counts the wait for a compile slot: twenty debug
    // compiles two at a time on a loaded CI machine can take longer than
    // the default minute. This test is about `/health`, not that limit.
    let s = std::sync::Arc::new(
        TestServer::start_with(|c| {
            c.assembly.compile_timeout = std::time::Duration::from_secs(900);
        })
        .await,
    );
    let base = std::fs::read(assay_test_support::plugin_wasm("regex-match")).unwrap();
    let uploads: Vec<_> = (0..20)
        .map(|i| {
            let s = s.clone();
            let bytes = with_custom_section(base.clone(), i);
            tokio::spawn(async move {
                s.send(
                    s.request(Method::POST, "/api/plugins")
                        .header("content-type", "application/wasm")
                        .body(bytes),
                )
                .await
            })
        })
        .collect();
    let mut latencies = Vec::new();
    while !uploads.iter().all(|u| u.is_finished()) {
        let started = std::time::Instant::now();
        let (status, _) = s.get("/health").await;
        latencies.push(started.elapsed());
        assert_eq!(status, StatusCode::OK);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for upload in uploads {
        let (status, body) = upload.await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["id"], "regex");
    }
    assert!(
        latencies.len() >= 5,
        "/health answered only {} times while the uploads ran",
        latencies.len()
    );
    latencies.sort();
    let pct = |p: usize| latencies[(latencies.len() - 1) * p / 100];
    println!(
        "/health during 20 concurrent uploads: {} requests, p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        pct(50),
        pct(99),
        latencies[latencies.len() - 1]
    );
}

/// Compiled plugins held in memory are bounded: with a budget smaller than
/// two plugins, loading the second drops the first, and a run that needs
/// the dropped one loads it again; deleting a plugin drops it at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loaded_plugins_are_dropped_over_budget_and_on_delete() {
    let s = TestServer::start_with(|c| c.assembly.loaded_plugin_bytes = 1).await;
    let catalog = s.state().catalog().clone();
    let echo = s.upload_plugin("echo").await;
    let echo_digest = echo["digest"].as_str().unwrap().to_string();
    assert!(catalog.is_loaded(&echo_digest));
    let exact = s.upload_plugin("exact-match").await;
    let exact_digest = exact["digest"].as_str().unwrap().to_string();
    assert!(catalog.is_loaded(&exact_digest));
    assert!(
        !catalog.is_loaded(&echo_digest),
        "the least recently used plugin stays loaded over the budget"
    );
    assert_eq!(catalog.loaded_usage().0, 1);

    // A run of the dropped plugin still works: it is loaded again.
    let ds = s
        .dataset_with_items(
            "d",
            vec![serde_json::json!({"input": "a", "groundTruth": "a"})],
        )
        .await;
    let (status, run) = s
        .post(
            &format!("/api/datasets/{ds}/runs"),
            serde_json::json!({"targetType": "plugin", "targetId": "echo", "scorerIds": ["exact-match"]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    let seen = s
        .poll_run(
            &ds,
            run["runId"].as_str().unwrap(),
            std::time::Duration::from_millis(50),
            std::time::Duration::from_secs(30),
        )
        .await;
    assert_eq!(seen.last().unwrap()["status"], "completed", "{seen:?}");
    assert_eq!(seen.last().unwrap()["succeededCount"], 1);

    // Deleting drops the compiled code of this process at once.
    let (status, body) = s.delete("/api/plugins/exact-match").await;
    assert!(status.is_success(), "{status} {body}");
    let (status, body) = s.delete("/api/plugins/echo").await;
    assert!(status.is_success(), "{status} {body}");
    assert!(!catalog.is_loaded(&exact_digest));
    assert!(!catalog.is_loaded(&echo_digest));
    assert_eq!(catalog.loaded_usage(), (0, 0));
    s.stop().await;
}
