//! Datasets, items, versions and tenants.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{TestServer, assert_error};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasets_are_created_listed_paged_updated_and_deleted() {
    let s = TestServer::start().await;
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        let (status, ds) = s
            .post(
                "/api/datasets",
                json!({"name": name, "description": "d", "metadata": {"k": 1}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{ds}");
        assert_eq!(ds["name"], name);
        assert_eq!(ds["metadata"]["k"], 1);
        ids.push(ds["id"].as_str().unwrap().to_string());
    }

    let (status, page0) = s.get("/api/datasets?page=0&perPage=2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page0["datasets"].as_array().unwrap().len(), 2);
    assert_eq!(
        page0["pagination"],
        json!({"total": 3, "page": 0, "perPage": 2, "hasMore": true})
    );
    let (_, page1) = s.get("/api/datasets?page=1&perPage=2").await;
    assert_eq!(page1["datasets"].as_array().unwrap().len(), 1);
    assert_eq!(page1["pagination"]["hasMore"], false);
    // Newest first.
    assert_eq!(page0["datasets"][0]["name"], "c");
    // perPage defaults to 10 and is capped at 100.
    let (_, all) = s.get("/api/datasets").await;
    assert_eq!(all["pagination"]["perPage"], 10);
    let (_, capped) = s.get("/api/datasets?perPage=1000").await;
    assert_eq!(capped["pagination"]["perPage"], 100);

    let (status, ds) = s
        .patch(
            &format!("/api/datasets/{}", ids[0]),
            json!({"name": "renamed", "description": null}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ds}");
    assert_eq!(ds["name"], "renamed");
    assert_eq!(ds["description"], serde_json::Value::Null);
    let (_, got) = s.get(&format!("/api/datasets/{}", ids[0])).await;
    assert_eq!(got["name"], "renamed");

    let (status, body) = s.delete(&format!("/api/datasets/{}", ids[0])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"success": true}));
    let (status, body) = s.get(&format!("/api/datasets/{}", ids[0])).await;
    let message = assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    assert!(message.contains(&ids[0]), "{message}");
    let (_, all) = s.get("/api/datasets").await;
    assert_eq!(all["pagination"]["total"], 2);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_support_crud_bulk_search_and_history() {
    let s = TestServer::start().await;
    let ds = s.dataset_with_items("items", vec![]).await;
    let items = format!("/api/datasets/{ds}/items");

    let (status, first) = s
        .post(
            &items,
            json!({"input": "alpha", "expectedOutput": "A", "context": {"src": "t"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let first_id = first["id"].as_str().unwrap().to_string();
    assert_eq!(first["expectedOutput"], "A");
    assert_eq!(first["context"]["src"], "t");
    let (_, after_one) = s.get(&format!("/api/datasets/{ds}")).await;
    let version_one = after_one["version"].as_i64().unwrap();

    let (status, bulk) = s
        .post(
            &format!("{items}/bulk"),
            json!({"items": [{"input": "beta"}, {"input": {"q": "gamma"}}, {"input": "delta", "expectedOutput": "XYZ"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{bulk}");
    assert_eq!(bulk["count"], 3);
    let bulk_ids: Vec<String> = bulk["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();

    // Dataset order, paged.
    let (_, list) = s.get(&format!("{items}?perPage=3")).await;
    assert_eq!(list["pagination"]["total"], 4);
    assert_eq!(list["pagination"]["hasMore"], true);
    let inputs: Vec<_> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["input"].clone())
        .collect();
    assert_eq!(
        inputs,
        vec![json!("alpha"), json!("beta"), json!({"q": "gamma"})]
    );

    // Search is a case-insensitive substring of input / expectedOutput.
    let (_, found) = s.get(&format!("{items}?search=GAMM")).await;
    assert_eq!(found["pagination"]["total"], 1);
    assert_eq!(found["items"][0]["input"]["q"], "gamma");
    let (_, found) = s.get(&format!("{items}?search=xyz")).await;
    assert_eq!(found["pagination"]["total"], 1, "{found}"); // via expectedOutput
    assert_eq!(found["items"][0]["input"], "delta");

    // A past version shows only what existed then.
    let (_, old) = s.get(&format!("{items}?version={version_one}")).await;
    assert_eq!(old["pagination"]["total"], 1);
    assert_eq!(old["items"][0]["id"], first_id.as_str());

    // One item: get, patch, history.
    let one = format!("{items}/{first_id}");
    let (status, got) = s.get(&one).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["input"], "alpha");
    let (status, patched) = s
        .patch(&one, json!({"input": "alpha2", "context": null}))
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["input"], "alpha2");
    assert_eq!(patched["expectedOutput"], "A");
    assert_eq!(patched["context"], serde_json::Value::Null);
    let (status, history) = s.get(&format!("{one}/versions")).await;
    assert_eq!(status, StatusCode::OK, "{history}");
    assert_eq!(history["pagination"]["total"], 2);
    assert_eq!(history["versions"][0]["versionNumber"], 2); // newest first
    // `versions/{n}`: the item as it was at dataset version n.
    let (status, v1) = s.get(&format!("{one}/versions/{version_one}")).await;
    assert_eq!(status, StatusCode::OK, "{v1}");
    assert_eq!(v1["snapshot"]["input"], "alpha");
    assert_eq!(v1["input"], "alpha");
    assert_eq!(v1["versionNumber"], 1);
    let (status, body) = s.get(&format!("{one}/versions/99")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    // Bulk delete goes to /items/bulk, not to /items/{itemId}.
    let (status, body) = s
        .delete_json(
            &format!("{items}/bulk"),
            json!({"itemIds": [bulk_ids[0], bulk_ids[1], "no-such-item"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"success": true, "deletedCount": 2}));
    let (status, body) = s.delete(&one).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = s.get(&one).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = s.delete(&one).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (_, list) = s.get(&items).await;
    assert_eq!(list["pagination"]["total"], 1);
    assert_eq!(list["items"][0]["id"], bulk_ids[2].as_str());
    // A deleted item keeps its history, ending in a tombstone.
    let (status, history) = s.get(&format!("{one}/versions")).await;
    assert_eq!(status, StatusCode::OK, "{history}");
    assert_eq!(history["versions"][0]["isDeleted"], true);

    // The dataset's versions: one per change, newest first.
    let (status, versions) = s
        .get(&format!("/api/datasets/{ds}/versions?perPage=100"))
        .await;
    assert_eq!(status, StatusCode::OK, "{versions}");
    let (_, dataset) = s.get(&format!("/api/datasets/{ds}")).await;
    assert_eq!(versions["versions"][0]["version"], dataset["version"]);
    assert_eq!(dataset["itemCount"], 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_see_only_their_own_world() {
    let mut s = TestServer::start().await;
    let ds_default = s
        .dataset_with_items("shared-name", vec![json!({"input": 1})])
        .await;

    s.act_as("team-a").await;
    let (_, list) = s.get("/api/datasets").await;
    assert_eq!(list["pagination"]["total"], 0, "a new tenant starts empty");
    let (status, body) = s.get(&format!("/api/datasets/{ds_default}")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = s.get(&format!("/api/datasets/{ds_default}/items")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = s.delete(&format!("/api/datasets/{ds_default}")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    // The same name is free in another tenant.
    let ds_a = s
        .dataset_with_items("shared-name", vec![json!({"input": 2})])
        .await;

    s.act_as("default").await;
    let (_, list) = s.get("/api/datasets").await;
    assert_eq!(list["pagination"]["total"], 1);
    let (status, body) = s.get(&format!("/api/datasets/{ds_a}")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, _) = s.get(&format!("/api/datasets/{ds_default}")).await;
    assert_eq!(status, StatusCode::OK);
    s.stop().await;
}
