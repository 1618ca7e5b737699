//! Bad input: a JSON error `{message, code}` with the right status, and
//! nothing changes.

use reqwest::{Method, StatusCode};
use serde_json::json;

use assay_store::TenantLimits;

use crate::common::{TestServer, assert_error};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_or_mistyped_bodies_are_json_errors_and_change_nothing() {
    let s = TestServer::start().await;
    let raw = |body: &'static str, ct: &'static str| {
        s.request(Method::POST, "/api/datasets")
            .header("content-type", ct)
            .body(body)
    };

    let (status, body) = s.send(raw("{\"name\": ", "application/json")).await;
    let message = assert_error(status, &body, StatusCode::BAD_REQUEST, "malformed_json");
    assert!(message.contains("JSON"), "{message}");
    let (status, body) = s
        .send(raw("{\"name\": \"x\"} trailing", "application/json"))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "malformed_json");

    let (status, body) = s.send(raw("{\"name\": \"x\"}", "text/plain")).await;
    assert_error(
        status,
        &body,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let (status, body) = s
        .send(
            s.request(Method::POST, "/api/datasets")
                .body("{\"name\": \"x\"}"),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );

    let (status, body) = s
        .post("/api/datasets", json!({"description": "no name"}))
        .await;
    let message = assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");
    assert!(message.contains("name"), "{message}");
    let (status, body) = s.post("/api/datasets", json!({"name": 42})).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");
    assert_eq!(body["field"], "name", "{body}");
    let (status, body) = s.post("/api/datasets", json!({"name": "  "})).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");

    let (_, list) = s.get("/api/datasets").await;
    assert_eq!(list["pagination"]["total"], 0, "no dataset was created");

    // A bulk add with one bad item adds nothing, and names the item.
    let ds = s.dataset_with_items("d", vec![json!({"input": 0})]).await;
    let (status, body) = s
        .post(
            &format!("/api/datasets/{ds}/items/bulk"),
            json!({"items": [{"input": 1}, {"expectedOutput": 2}]}),
        )
        .await;
    let message = assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");
    assert!(
        message.contains("items[1]") && message.contains("input"),
        "{message}"
    );
    let (_, items) = s.get(&format!("/api/datasets/{ds}/items")).await;
    assert_eq!(items["pagination"]["total"], 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_invalid_items_are_rejected_with_the_field() {
    let s = TestServer::start().await;
    let (status, ds) = s
        .post(
            "/api/datasets",
            json!({
                "name": "typed",
                "inputSchema": {
                    "type": "object",
                    "properties": {"question": {"type": "string"}},
                    "required": ["question"]
                }
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ds}");
    let ds = ds["id"].as_str().unwrap();
    let (status, body) = s
        .post(
            &format!("/api/datasets/{ds}/items/bulk"),
            json!({"items": [{"input": {"question": "ok"}}, {"input": {"question": 7}}]}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
    let field = body["field"].as_str().unwrap_or_default();
    assert!(
        field.contains("items[1]") || field.contains("question"),
        "{body}"
    );
    let (status, body) = s
        .post(
            &format!("/api/datasets/{ds}/items"),
            json!({"input": "not an object"}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
    let (_, items) = s.get(&format!("/api/datasets/{ds}/items")).await;
    assert_eq!(items["pagination"]["total"], 0);
    // An invalid schema is refused too.
    let (status, body) = s
        .post(
            "/api/datasets",
            json!({"name": "bad-schema", "inputSchema": {"type": "nonsense"}}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids_are_404_also_across_datasets() {
    let s = TestServer::start().await;
    let a = s.dataset_with_items("a", vec![json!({"input": 1})]).await;
    let b = s.dataset_with_items("b", vec![json!({"input": 2})]).await;
    let (_, items_a) = s.get(&format!("/api/datasets/{a}/items")).await;
    let item_a = items_a["items"][0]["id"].as_str().unwrap();

    for path in [
        "/api/datasets/nope".to_string(),
        "/api/datasets/nope/items".to_string(),
        "/api/datasets/nope/versions".to_string(),
        "/api/datasets/nope/runs".to_string(),
        format!("/api/datasets/{b}/items/{item_a}"),
        format!("/api/datasets/{b}/items/{item_a}/versions"),
        format!("/api/datasets/{a}/items/nope"),
        format!("/api/datasets/{a}/runs/nope"),
        format!("/api/datasets/{a}/runs/nope/results"),
        format!("/api/datasets/{a}/runs/nope/events"),
        "/api/plugins/nope".to_string(),
    ] {
        let (status, body) = s.get(&path).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    }
    let (status, body) = s
        .patch(
            &format!("/api/datasets/{b}/items/{item_a}"),
            json!({"input": 9}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = s.delete(&format!("/api/datasets/{b}/items/{item_a}")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (_, item) = s.get(&format!("/api/datasets/{a}/items/{item_a}")).await;
    assert_eq!(item["input"], 1, "the item was not changed");

    let (status, body) = s
        .post(
            "/api/datasets/nope/runs",
            json!({"targetType": "plugin", "targetId": "echo"}),
        )
        .await;
    let message = assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    assert!(message.contains("nope"), "{message}");
    let (status, body) = s
        .post(
            "/api/datasets/nope/compare",
            json!({"runIdA": "x", "runIdB": "y"}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    // Routing and parameter errors are JSON too.
    let (status, body) = s.get("/api/nothing-here").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "route_not_found");
    let (status, body) = s
        .send(s.request(Method::PUT, &format!("/api/datasets/{a}")))
        .await;
    let message = assert_error(
        status,
        &body,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    assert!(message.contains("PATCH"), "{message}");
    let (status, body) = s.get("/api/datasets?page=abc").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_query");
    let (status, body) = s
        .get(&format!("/api/datasets/{a}/items/{item_a}/versions/first"))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_path");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_are_413_and_add_nothing() {
    let s = TestServer::start_with(|c| c.body_limit_bytes = 64 * 1024).await;
    let ds = s.dataset_with_items("big", vec![]).await;
    let items: Vec<_> = (0..2000)
        .map(|i| json!({"input": format!("item number {i} with some padding text")}))
        .collect();
    let (status, body) = s
        .post(
            &format!("/api/datasets/{ds}/items/bulk"),
            json!({"items": items}),
        )
        .await;
    let message = assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    assert!(message.contains("65536"), "{message}");
    let (_, list) = s.get(&format!("/api/datasets/{ds}/items")).await;
    assert_eq!(list["pagination"]["total"], 0);
    // Under the limit works.
    let (status, body) = s
        .post(
            &format!("/api/datasets/{ds}/items/bulk"),
            json!({"items": items[..100]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Uploads obey the same limit.
    let (status, body) = s
        .send(
            s.request(Method::POST, "/api/plugins")
                .header("content-type", "application/wasm")
                .body(vec![0u8; 100 * 1024]),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_triggers_are_400_and_create_no_run() {
    let s = TestServer::start().await;
    s.upload_plugin("echo").await;
    s.upload_plugin("exact-match").await;
    let ds = s
        .dataset_with_items("d", vec![json!({"input": "x", "expectedOutput": "x"})])
        .await;
    let empty = s.dataset_with_items("empty", vec![]).await;
    let runs = format!("/api/datasets/{ds}/runs");

    let (status, body) = s
        .post(
            &runs,
            json!({"targetType": "plugin", "targetId": "no-such-target"}),
        )
        .await;
    let message = assert_error(status, &body, StatusCode::BAD_REQUEST, "unknown_plugin");
    assert!(message.contains("no-such-target"), "{message}");

    let (status, body) = s
        .post(
            &runs,
            json!({"targetType": "agent", "targetId": "echo", "scorerIds": ["exact-match", "no-such-scorer"]}),
        )
        .await;
    let message = assert_error(status, &body, StatusCode::BAD_REQUEST, "unknown_plugin");
    assert!(message.contains("no-such-scorer"), "{message}");

    // A scorer where a target is expected.
    let (status, body) = s
        .post(
            &runs,
            json!({"targetType": "plugin", "targetId": "exact-match"}),
        )
        .await;
    let message = assert_error(status, &body, StatusCode::BAD_REQUEST, "wrong_plugin_kind");
    assert!(message.contains("exact-match"), "{message}");

    let (status, body) = s
        .post(
            &runs,
            json!({"targetType": "processor", "targetId": "echo"}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");
    assert_eq!(body["field"], "targetType");

    let (status, body) = s
        .post(
            &runs,
            json!({"targetType": "plugin", "targetId": "echo", "maxConcurrency": 0}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_option");
    assert_eq!(body["field"], "maxConcurrency");

    // Trials per item: 1 to 100.
    for repeat in [0, 101] {
        let (status, body) = s
            .post(
                &runs,
                json!({"targetType": "plugin", "targetId": "echo", "repeat": repeat}),
            )
            .await;
        let message = assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_option");
        assert_eq!(body["field"], "repeat", "{body}");
        assert!(message.contains("between 1 and 100"), "{message}");
    }

    let (status, body) = s
        .post(
            &runs,
            json!({"targetType": "plugin", "targetId": "echo", "maxRetries": "many"}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");
    assert_eq!(body["field"], "maxRetries");

    let (status, body) = s
        .post(
            &runs,
            json!({"targetType": "plugin", "targetId": "echo", "scorerConfigs": {"exact-match": {}}}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");

    let (status, body) = s
        .post(
            &runs,
            json!({"targetType": "plugin", "targetId": "echo", "version": 99}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_option");

    let (status, body) = s
        .post(
            &format!("/api/datasets/{empty}/runs"),
            json!({"targetType": "plugin", "targetId": "echo"}),
        )
        .await;
    let message = assert_error(status, &body, StatusCode::BAD_REQUEST, "empty_dataset");
    assert!(message.contains("No items"), "{message}");

    for d in [&ds, &empty] {
        let (_, list) = s.get(&format!("/api/datasets/{d}/runs")).await;
        assert_eq!(list["pagination"]["total"], 0, "no run was created: {list}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_over_the_tenant_limit_are_422_naming_it_and_add_nothing() {
    let mut s = TestServer::start().await;
    s.act_as("small").await;
    let limits = TenantLimits {
        items_per_dataset: 3,
        ..TenantLimits::default()
    };
    s.state()
        .store()
        .set_tenant_limits("small", &limits)
        .await
        .unwrap();
    let ds = s
        .dataset_with_items("limited", vec![json!({"input": 0})])
        .await;
    let (status, body) = s
        .post(
            &format!("/api/datasets/{ds}/items/bulk"),
            json!({"items": [{"input": 1}, {"input": 2}, {"input": 3}]}),
        )
        .await;
    let message = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "limit_exceeded",
    );
    assert!(message.contains("items-per-dataset"), "{message}");
    assert_eq!(
        body["details"],
        json!({"limit": "items-per-dataset", "value": 3})
    );
    let (_, list) = s.get(&format!("/api/datasets/{ds}/items")).await;
    assert_eq!(list["pagination"]["total"], 1);
    s.stop().await;
}

/// A bulk add over a cap (items per request, bytes per item) is a 400
/// naming the cap and its value; nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_adds_over_the_caps_are_refused_naming_the_cap() {
    use assay_store::validate::{MAX_ITEM_BYTES, MAX_ITEMS_PER_REQUEST};
    let s = TestServer::start().await;
    let ds = s
        .dataset_with_items("capped", vec![json!({"input": 0})])
        .await;
    let too_many: Vec<_> = (0..=MAX_ITEMS_PER_REQUEST)
        .map(|i| json!({"input": i}))
        .collect();
    let (status, body) = s
        .post(
            &format!("/api/datasets/{ds}/items/bulk"),
            json!({"items": too_many}),
        )
        .await;
    let message = assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
    assert!(
        message.contains(&format!("maxItemsPerRequest = {MAX_ITEMS_PER_REQUEST}")),
        "{message}"
    );
    assert_eq!(body["field"], "items");

    let huge = "x".repeat(MAX_ITEM_BYTES as usize);
    let (status, body) = s
        .post(
            &format!("/api/datasets/{ds}/items/bulk"),
            json!({"items": [{"input": 1}, {"input": huge}]}),
        )
        .await;
    let message = assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
    assert!(
        message.contains(&format!("maxItemBytes = {MAX_ITEM_BYTES}")),
        "{message}"
    );
    assert_eq!(body["field"], "items[1]");
    let (_, items) = s.get(&format!("/api/datasets/{ds}/items")).await;
    assert_eq!(items["pagination"]["total"], 1);
    s.stop().await;
}
