//! The OpenAPI document matches what the server really does.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::TestServer;

fn doc_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            out.insert((method.to_uppercase(), path.clone()));
        }
    }
    out
}

/// Every property of `value` is documented in schema `name`, and every
/// required one is present.
fn assert_matches_schema(doc: &Value, name: &str, value: &Value) {
    let schema = &doc["components"]["schemas"][name];
    let props = schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("schema {name}"));
    let obj = value
        .as_object()
        .unwrap_or_else(|| panic!("{name}: not an object: {value}"));
    for key in obj.keys() {
        assert!(props.contains_key(key), "{name}: `{key}` is not documented");
    }
    for req in schema["required"].as_array().unwrap() {
        let req = req.as_str().unwrap();
        assert!(
            obj.contains_key(req),
            "{name}: required `{req}` missing in {value}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_lists_exactly_the_routes_the_server_answers() {
    let s = TestServer::start().await;
    let (status, doc) = s.get("/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");

    let documented = doc_routes(&doc);
    let table: BTreeSet<(String, String)> = assay_api::ROUTES
        .iter()
        .map(|r| (r.verb.method().to_string(), r.path.to_string()))
        .collect();
    assert_eq!(documented, table);

    // Every documented route is served: the router never answers "no such
    // route" or "method not allowed" for it.
    for (method, path) in &documented {
        let concrete = path
            .replace("{datasetVersion}", "1")
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let rb = s.request(Method::from_bytes(method.as_bytes()).unwrap(), &concrete);
        let resp = rb.send().await.unwrap();
        let status = resp.status();
        let body: Value = if resp
            .headers()
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().starts_with("application/json"))
        {
            resp.json().await.unwrap()
        } else {
            Value::Null
        };
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {body}"
        );
        assert_ne!(body["code"], "route_not_found", "{method} {path}: {body}");
        let documented_statuses: Vec<String> =
            doc["paths"][path][method.to_lowercase()]["responses"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
        assert!(
            documented_statuses.contains(&status.as_u16().to_string()),
            "{method} {concrete} answered {status}, documented: {documented_statuses:?} ({body})"
        );
    }

    // And an undocumented path or method is refused.
    let (status, body) = s.send(s.request(Method::PUT, "/api/datasets")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_schemas_match_real_answers() {
    let s = TestServer::start().await;
    let (_, doc) = s.get("/api/openapi.json").await;
    s.upload_plugin("echo").await;
    s.upload_plugin("exact-match").await;
    let (_, dataset) = s.post("/api/datasets", json!({"name": "shapes"})).await;
    assert_matches_schema(&doc, "Dataset", &dataset);
    let ds = dataset["id"].as_str().unwrap();
    let (_, item) = s
        .post(
            &format!("/api/datasets/{ds}/items"),
            json!({"input": "a", "expectedOutput": "a"}),
        )
        .await;
    assert_matches_schema(&doc, "DatasetItem", &item);
    let item_id = item["id"].as_str().unwrap();
    let (_, versions) = s
        .get(&format!("/api/datasets/{ds}/items/{item_id}/versions"))
        .await;
    assert_matches_schema(&doc, "ItemVersion", &versions["versions"][0]);
    assert_matches_schema(&doc, "Pagination", &versions["pagination"]);
    let (_, versions) = s.get(&format!("/api/datasets/{ds}/versions")).await;
    assert_matches_schema(&doc, "DatasetVersion", &versions["versions"][0]);
    let (_, trigger) = s
        .post(
            &format!("/api/datasets/{ds}/runs"),
            json!({"targetType": "plugin", "targetId": "echo", "scorerIds": ["exact-match"]}),
        )
        .await;
    assert_matches_schema(&doc, "TriggeredRun", &trigger);
    let run_id = trigger["runId"].as_str().unwrap();
    let seen = s
        .poll_run(
            ds,
            run_id,
            std::time::Duration::from_millis(50),
            std::time::Duration::from_secs(30),
        )
        .await;
    assert_matches_schema(&doc, "Run", seen.last().unwrap());
    let results = s.all_results(ds, run_id, 10).await;
    assert_matches_schema(&doc, "RunResult", &results[0]);
    assert_matches_schema(&doc, "ScoreRow", &results[0]["scores"][0]);
    // The Mastra surface: experiments, their results, scores, item history.
    let (_, exp) = s
        .get(&format!("/api/datasets/{ds}/experiments/{run_id}"))
        .await;
    assert_matches_schema(&doc, "Experiment", &exp);
    let (_, all) = s.get("/api/experiments").await;
    assert_matches_schema(&doc, "Experiment", &all["experiments"][0]);
    let (_, res) = s
        .get(&format!("/api/datasets/{ds}/experiments/{run_id}/results"))
        .await;
    assert_matches_schema(&doc, "ExperimentResult", &res["results"][0]);
    let (_, scores) = s.get(&format!("/api/scores/run/{run_id}")).await;
    assert_matches_schema(&doc, "Score", &scores["scores"][0]);
    assert_matches_schema(&doc, "Pagination", &scores["pagination"]);
    let (_, history) = s
        .get(&format!("/api/datasets/{ds}/items/{item_id}/history"))
        .await;
    assert_matches_schema(&doc, "ItemHistory", &history);
    assert_matches_schema(&doc, "ItemHistoryEntry", &history["history"][0]);
    let v = item["version"].as_i64().unwrap();
    let (_, at) = s
        .get(&format!("/api/datasets/{ds}/items/{item_id}/versions/{v}"))
        .await;
    assert_matches_schema(&doc, "ItemHistoryEntry", &at);
    let (_, cmp) = s
        .post(
            &format!("/api/datasets/{ds}/compare"),
            json!({"experimentIdA": run_id, "experimentIdB": run_id}),
        )
        .await;
    assert_matches_schema(&doc, "ComparisonResult", &cmp);
    let (status, trig) = s
        .post(
            &format!("/api/datasets/{ds}/experiments"),
            json!({"targetType": "agent", "targetId": "echo"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{trig}");
    assert_matches_schema(&doc, "TriggeredRun", &trig);
    let (_, summary) = s
        .get(&format!("/api/datasets/{ds}/runs/{run_id}/summary"))
        .await;
    assert_matches_schema(&doc, "RunSummary", &summary);
    let (_, plugin) = s.get("/api/plugins/echo").await;
    let plugin_props = doc["components"]["schemas"]["PluginDetail"]["allOf"][1]["properties"]
        .as_object()
        .unwrap();
    let mut base = plugin.clone();
    for key in plugin_props.keys() {
        base.as_object_mut().unwrap().remove(key);
    }
    assert_matches_schema(&doc, "Plugin", &base);
    let (_, err) = s.get("/api/datasets/nope").await;
    assert_matches_schema(&doc, "Error", &err);
    let (_, health) = s.get("/health").await;
    assert_matches_schema(&doc, "Health", &health);
    s.stop().await;
}
