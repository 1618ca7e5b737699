//! Secrets and network grants over real HTTP: values are write-only, grants
//! are validated by the plugin host's `NetworkGrant`, roles are enforced.

use assay_store::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::TestServer;

const VALUE: &str = "sk-live-0123456789abcdefSECRET";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_values_are_write_only_and_never_in_any_answer() {
    let s = TestServer::start().await;
    s.upload_plugin("echo").await;
    s.upload_plugin("exact-match").await;
    let mut answers: Vec<(String, Value)> = Vec::new();

    let (status, body) = s
        .put("/api/secrets/OPENAI_API_KEY", json!({"value": VALUE}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "OPENAI_API_KEY");
    answers.push(("put".into(), body));

    let (status, body) = s.get("/api/secrets").await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = body["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["OPENAI_API_KEY"]);
    answers.push(("list".into(), body));

    let (status, body) = s
        .put(
            "/api/plugins/echo/grant",
            json!({"hosts": ["api.openai.com"], "limits": {"maxRequests": 4}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    answers.push(("grant".into(), body));
    let (_, body) = s.get("/api/plugins/echo").await;
    assert_eq!(body["networkGrant"]["hosts"], json!(["api.openai.com"]));
    answers.push(("plugin".into(), body));
    let (_, body) = s.get("/api/plugins").await;
    answers.push(("plugins".into(), body));

    let ds = s
        .dataset_with_items(
            "secret-free",
            vec![json!({"input": "a", "expectedOutput": "a"})],
        )
        .await;
    let (status, run) = s
        .post(
            &format!("/api/datasets/{ds}/runs"),
            json!({"targetType": "plugin", "targetId": "echo", "scorerIds": ["exact-match"]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    let run_id = run["runId"]
        .as_str()
        .or(run["id"].as_str())
        .unwrap()
        .to_string();
    answers.push(("trigger".into(), run));
    let (_, body) = s.get(&format!("/api/datasets/{ds}/runs/{run_id}")).await;
    answers.push(("run".into(), body));
    let (_, body) = s.get("/api/tenant").await;
    answers.push(("tenant".into(), body));
    let (_, body) = s.get("/api/openapi.json").await;
    answers.push(("openapi".into(), body));

    for (what, body) in &answers {
        assert!(
            !body.to_string().contains(VALUE),
            "the secret's value is in the {what} answer: {body}"
        );
    }

    // The stored row is sealed: the database file does not hold the value.
    let db = std::fs::read(s.dir.path().join("assay.db")).unwrap();
    let wal = std::fs::read(s.dir.path().join("assay.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(!bytes.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()));
    }

    let (status, _) = s.delete("/api/secrets/OPENAI_API_KEY").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s.delete("/api/secrets/OPENAI_API_KEY").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_secret_requests_are_refused_and_change_nothing() {
    let s = TestServer::start().await;
    for (path, body) in [
        (
            "/api/secrets/OPENAI_API_KEY",
            json!({"value": "x", "extra": 1}),
        ),
        ("/api/secrets/OPENAI_API_KEY", json!({"value": ""})),
        ("/api/secrets/OPENAI_API_KEY", json!({})),
        ("/api/secrets/OPENAI_API_KEY", json!({"value": 3})),
        ("/api/secrets/lower_case", json!({"value": "x"})),
        ("/api/secrets/1ABC", json!({"value": "x"})),
    ] {
        let (status, answer) = s.put(path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {answer}");
    }
    let (_, list) = s.get("/api/secrets").await;
    assert_eq!(list["secrets"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_are_validated_replaced_and_revoked() {
    let s = TestServer::start().await;
    s.upload_plugin("echo").await;

    let (status, body) = s.get("/api/plugins/echo/grant").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (_, plugin) = s.get("/api/plugins/echo").await;
    assert_eq!(plugin["networkGrant"], Value::Null);

    // A bad host is a 400 naming it; an unknown field is a 400.
    let (status, body) = s
        .put(
            "/api/plugins/echo/grant",
            json!({"hosts": ["api.openai.com", "http://x/"]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.to_string().contains("http://x/"), "{body}");
    let (status, _) = s
        .put(
            "/api/plugins/echo/grant",
            json!({"hosts": ["a.com"], "allowHTTP": true}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = s
        .put("/api/plugins/nope/grant", json!({"hosts": ["a.com"]}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = s
        .put(
            "/api/plugins/echo/grant",
            json!({"hosts": ["*.example.com:8443", "127.0.0.1:8080"], "allowHttp": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["grantedBy"].as_str().unwrap().starts_with("key:"));
    let (_, got) = s.get("/api/plugins/echo/grant").await;
    assert_eq!(
        got["grant"]["hosts"],
        json!(["*.example.com:8443", "127.0.0.1:8080"])
    );
    assert_eq!(got["grant"]["allowHttp"], true);
    assert_eq!(got["grant"]["limits"]["maxRequests"], 16);

    // PUT replaces.
    s.put(
        "/api/plugins/echo/grant",
        json!({"hosts": ["api.openai.com"]}),
    )
    .await;
    let (_, got) = s.get("/api/plugins/echo/grant").await;
    assert_eq!(got["grant"]["hosts"], json!(["api.openai.com"]));
    assert_eq!(got["grant"]["allowHttp"], false);

    let (status, _) = s.delete("/api/plugins/echo/grant").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s.get("/api/plugins/echo/grant").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_change_secrets_and_grants_and_tenants_do_not_share_them() {
    let mut s = TestServer::start().await;
    s.upload_plugin("echo").await;
    s.put("/api/secrets/TOKEN", json!({"value": VALUE})).await;

    let member = s.key("default", Role::Member).await;
    let viewer = s.key("default", Role::Viewer).await;
    let admin = s.token.clone();

    s.token = Some(member);
    let (status, _) = s.get("/api/secrets").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s.put("/api/secrets/TOKEN", json!({"value": "v"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s.delete("/api/secrets/TOKEN").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .put("/api/plugins/echo/grant", json!({"hosts": ["a.com"]}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    s.token = Some(viewer);
    let (status, _) = s.get("/api/secrets").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s.get("/api/plugins/echo/grant").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a viewer reads grants (none set)"
    );

    // Another tenant sees none of default's secrets or grants.
    s.token = admin;
    s.put("/api/plugins/echo/grant", json!({"hosts": ["a.com"]}))
        .await;
    s.act_as("team-b").await;
    let (_, list) = s.get("/api/secrets").await;
    assert_eq!(list["secrets"], json!([]));
    let (status, _) = s.get("/api/plugins/echo/grant").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_may_narrow_a_grant_but_never_widen_it() {
    let s = TestServer::start().await;
    s.upload_plugin("echo").await;
    s.upload_plugin("exact-match").await;
    let ds = s
        .dataset_with_items("narrow", vec![json!({"input": "a", "expectedOutput": "a"})])
        .await;
    s.put(
        "/api/plugins/echo/grant",
        json!({"hosts": ["*.example.com", "127.0.0.1:8080"], "allowHttp": true,
               "limits": {"maxRequests": 8}}),
    )
    .await;
    let trigger = |network: Value| {
        let s = &s;
        let ds = ds.clone();
        async move {
            s.post(
                &format!("/api/datasets/{ds}/runs"),
                json!({"targetType": "plugin", "targetId": "echo", "scorerIds": ["exact-match"],
                       "network": network}),
            )
            .await
        }
    };

    // Wider than the grant: a host, plain http is fine here (granted).
    let (status, body) = trigger(json!({"echo": {"hosts": ["evil.com"]}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("evil.com"), "{body}");
    // A plugin without a grant, or not in the run.
    let (status, body) = trigger(json!({"exact-match": {"hosts": ["a.example.com"]}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = trigger(json!({"other": {"hosts": ["a.example.com"]}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // A malformed host or an unknown field in the narrowing.
    let (status, _) = trigger(json!({"echo": {"hosts": ["a b"]}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = trigger(json!({"echo": {"hostz": []}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Narrower: accepted, and the narrowed grant is stored with the run.
    let (status, run) = trigger(json!({"echo": {"hosts": ["api.example.com"],
        "limits": {"maxRequests": 100}}}))
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    let run_id = run["runId"].as_str().unwrap();
    let stored = s
        .state()
        .store()
        .get_run(assay_store::DEFAULT_TENANT, run_id)
        .await
        .unwrap();
    let network = &stored.config["options"]["network"]["echo"];
    assert_eq!(network["hosts"], json!(["api.example.com"]));
    assert_eq!(
        network["limits"]["maxRequests"], 8,
        "the tighter limit wins"
    );
}
