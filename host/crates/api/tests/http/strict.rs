//! No silent data loss: every JSON body is parsed strictly (an unknown field
//! is a 400 naming it, and nothing is written), and Mastra's names of
//! assay's fields are accepted as aliases, so what a Mastra client sends is
//! stored, not dropped.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestServer, assert_error};

/// Asserts a 400 `invalid_body` whose message and `field` name `field`.
fn assert_names_field(status: StatusCode, body: &Value, field: &str) {
    let message = assert_error(status, body, StatusCode::BAD_REQUEST, "invalid_body");
    let leaf = field.rsplit('.').next().unwrap();
    assert!(message.contains(leaf), "{message}");
    assert_eq!(body["field"], field, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_field_in_any_body_is_a_400_naming_it_and_writes_nothing() {
    let s = TestServer::start().await;
    s.upload_plugin("echo").await;
    let ds = s
        .dataset_with_items("strict", vec![json!({"input": "a", "expectedOutput": "a"})])
        .await;
    let (_, before) = s.get(&format!("/api/datasets/{ds}")).await;
    let (_, items) = s.get(&format!("/api/datasets/{ds}/items")).await;
    let item = items["items"][0]["id"].as_str().unwrap().to_string();

    let cases: Vec<(reqwest::Method, String, Value, &str)> = vec![
        (
            reqwest::Method::POST,
            "/api/datasets".into(),
            json!({"name": "x", "tags": ["a"]}),
            "tags",
        ),
        (
            reqwest::Method::PATCH,
            format!("/api/datasets/{ds}"),
            json!({"description": "d", "scorerIds": ["x"]}),
            "scorerIds",
        ),
        (
            reqwest::Method::POST,
            format!("/api/datasets/{ds}/items"),
            json!({"input": "b", "metadata": {"k": 1}}),
            "metadata",
        ),
        (
            reqwest::Method::PATCH,
            format!("/api/datasets/{ds}/items/{item}"),
            json!({"expectedOutputs": "typo"}),
            "expectedOutputs",
        ),
        (
            reqwest::Method::POST,
            format!("/api/datasets/{ds}/items/bulk"),
            json!({"items": [{"input": "c"}, {"input": "d", "externalId": "e"}]}),
            "items[1].externalId",
        ),
        (
            reqwest::Method::POST,
            format!("/api/datasets/{ds}/items/batch"),
            json!({"items": [{"input": "c"}], "source": "csv"}),
            "source",
        ),
        (
            reqwest::Method::DELETE,
            format!("/api/datasets/{ds}/items/bulk"),
            json!({"itemIds": [item], "force": true}),
            "force",
        ),
        (
            reqwest::Method::POST,
            format!("/api/datasets/{ds}/runs"),
            json!({"targetType": "plugin", "targetId": "echo", "name": "nightly"}),
            "name",
        ),
        (
            reqwest::Method::POST,
            format!("/api/datasets/{ds}/experiments"),
            json!({"targetType": "agent", "targetId": "echo", "requestContext": {}}),
            "requestContext",
        ),
        (
            reqwest::Method::POST,
            format!("/api/datasets/{ds}/compare"),
            json!({"runIdA": "a", "runIdB": "b", "thresholds": {"s": {"value": 1, "dir": "up"}}}),
            "thresholds.s.dir",
        ),
        (
            reqwest::Method::POST,
            format!("/api/datasets/{ds}/runs/any/rescore"),
            json!({"scorerIds": ["echo"], "targetId": "echo"}),
            "targetId",
        ),
    ];
    for (method, path, body, field) in cases {
        let (status, answer) = s.send(s.request(method.clone(), &path).json(&body)).await;
        assert_names_field(status, &answer, field);
    }

    // Nothing was written: same dataset version, same item, no run.
    let (_, after) = s.get(&format!("/api/datasets/{ds}")).await;
    assert_eq!(after["version"], before["version"]);
    assert_eq!(after["description"], before["description"]);
    let (_, items) = s.get(&format!("/api/datasets/{ds}/items")).await;
    assert_eq!(items["pagination"]["total"], 1);
    assert_eq!(items["items"][0]["expectedOutput"], "a");
    let (_, runs) = s.get(&format!("/api/datasets/{ds}/runs")).await;
    assert_eq!(runs["pagination"]["total"], 0);
    let (_, list) = s.get("/api/datasets").await;
    assert_eq!(list["pagination"]["total"], 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mastra_names_are_stored_under_assay_names() {
    let s = TestServer::start().await;
    let (status, ds) = s
        .post(
            "/api/datasets",
            json!({"name": "mastra", "groundTruthSchema": {"type": "string"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ds}");
    assert_eq!(ds["outputSchema"], json!({"type": "string"}));
    assert_eq!(ds["groundTruthSchema"], json!({"type": "string"}));
    assert!(
        ds.get("inputSchema").is_none(),
        "unset schemas are absent: {ds}"
    );
    let id = ds["id"].as_str().unwrap();
    let items = format!("/api/datasets/{id}/items");

    // groundTruth is expectedOutput (and is validated by the output schema).
    let (status, item) = s
        .post(&items, json!({"input": "France", "groundTruth": "Paris"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{item}");
    assert_eq!(item["expectedOutput"], "Paris");
    assert_eq!(item["groundTruth"], "Paris");
    assert_eq!(item["datasetVersion"], item["version"]);
    let (status, body) = s
        .post(&items, json!({"input": "x", "groundTruth": 3}))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
    let item_id = item["id"].as_str().unwrap();
    let one = format!("{items}/{item_id}");
    let version_after_add = item["version"].as_i64().unwrap();

    // Both names at once are ambiguous: refused.
    let (status, body) = s
        .post(
            &items,
            json!({"input": "x", "groundTruth": "a", "expectedOutput": "b"}),
        )
        .await;
    let message = assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");
    assert!(message.contains("duplicate"), "{message}");

    // An update through groundTruth changes the stored expectedOutput.
    let (status, patched) = s.patch(&one, json!({"groundTruth": "paris"})).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["expectedOutput"], "paris");
    let (_, got) = s.get(&one).await;
    assert_eq!(got["expectedOutput"], "paris");

    // A patch that names nothing changes nothing and records no version.
    let (_, before) = s.get(&format!("/api/datasets/{id}")).await;
    let (status, same) = s.patch(&one, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{same}");
    assert_eq!(same["expectedOutput"], "paris");
    let (_, after) = s.get(&format!("/api/datasets/{id}")).await;
    assert_eq!(after["version"], before["version"]);
    let (_, history) = s.get(&format!("{one}/history")).await;
    assert_eq!(history["history"].as_array().unwrap().len(), 2, "{history}");

    // The history, and the item at a dataset version.
    assert_eq!(history["history"][0]["groundTruth"], "paris");
    assert_eq!(history["history"][0]["validTo"], Value::Null);
    assert_eq!(history["history"][1]["groundTruth"], "Paris");
    assert_eq!(history["history"][1]["validTo"], after["version"]);
    let (status, then) = s.get(&format!("{one}/versions/{version_after_add}")).await;
    assert_eq!(status, StatusCode::OK, "{then}");
    assert_eq!(then["groundTruth"], "Paris");
    assert_eq!(then["versionNumber"], 1);
    let (status, body) = s.get(&format!("{one}/versions/0")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let future = after["version"].as_i64().unwrap() + 1;
    let (status, body) = s.get(&format!("{one}/versions/{future}")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    // datasetVersion is version in a trigger; start: false is refused.
    s.upload_plugin("echo").await;
    let (status, body) = s
        .post(
            &format!("/api/datasets/{id}/experiments"),
            json!({"targetType": "agent", "targetId": "echo", "start": false}),
        )
        .await;
    let message = assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");
    assert!(message.contains("start"), "{message}");
    let (status, trig) = s
        .post(
            &format!("/api/datasets/{id}/experiments"),
            json!({"targetType": "agent", "targetId": "echo", "datasetVersion": version_after_add}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{trig}");
    assert_eq!(trig["datasetVersion"], version_after_add);
    assert_eq!(trig["experimentId"], trig["runId"]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_query_parameter_is_a_400() {
    let s = TestServer::start().await;
    let ds = s.dataset_with_items("q", vec![]).await;
    for path in [
        "/api/datasets?orderBy=name".to_string(),
        format!("/api/datasets/{ds}/items?orderBy[field]=createdAt"),
        "/api/experiments?targetId=echo".to_string(),
        // A route that takes no parameters refuses a scope it cannot honour.
        format!("/api/datasets/{ds}?organizationId=org-1"),
    ] {
        let (status, body) = s.get(&path).await;
        let message = assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_query");
        let name = path
            .split('?')
            .nth(1)
            .unwrap()
            .split(['=', '['])
            .next()
            .unwrap();
        assert!(message.contains(name), "{path}: {message}");
    }
    s.stop().await;
}
