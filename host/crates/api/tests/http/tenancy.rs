//! Tenancy over real HTTP: API keys (401), roles (403), other tenants' ids
//! (404), shared plugins (409), tenant limits and operator ceilings (4xx,
//! nothing changed), the trusted-proxy header and `--no-auth`.

use std::time::Duration;

use assay_api::{AuthMode, ServeConfig, ServeError};
use assay_runner::Ceilings;
use assay_store::{Role, TenantLimits};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestServer, assert_error};

/// A request with `token` (or none) instead of the server's own key.
async fn call(
    s: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut rb = s.client.request(method, s.url(path));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    s.send(rb).await
}

async fn upload(s: &TestServer, plugin: &str) -> (StatusCode, Value) {
    let bytes = std::fs::read(assay_test_support::plugin_wasm(plugin)).unwrap();
    s.send(
        s.request(Method::POST, "/api/plugins")
            .header("content-type", "application/wasm")
            .body(bytes),
    )
    .await
}

async fn set_limits(s: &TestServer, tenant: &str, edit: impl FnOnce(&mut TenantLimits)) {
    let store = s.state().store();
    let mut limits = store.tenant_limits(tenant).await.unwrap();
    edit(&mut limits);
    store.set_tenant_limits(tenant, &limits).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_routes_need_a_live_key_and_health_stays_open() {
    let s = TestServer::start().await;
    let resp = s.client.get(s.url("/api/datasets")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Bearer realm=\"assay\"",
        "a 401 says how to authenticate"
    );
    for token in [None, Some("assay_0000"), Some("not-even-a-token")] {
        for path in [
            "/api/datasets",
            "/api/plugins",
            "/api/health",
            "/api/openapi.json",
        ] {
            let (status, body) = call(&s, Method::GET, path, token, None).await;
            assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
        }
    }
    let (status, body) = call(
        &s,
        Method::POST,
        "/api/datasets",
        Some("assay_0000"),
        Some(json!({"name": "x"})),
    )
    .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let resp = s.client.get(s.url("/health")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "/health needs no key");

    // A revoked key stops working at once.
    let token = s.key("default", Role::Member).await;
    let (status, _) = call(&s, Method::GET, "/api/datasets", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, keys) = s.get("/api/keys").await;
    let id = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["role"] == "member")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, revoked) = s.delete(&format!("/api/keys/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert!(revoked["revokedAt"].is_string(), "{revoked}");
    let (status, body) = call(&s, Method::GET, "/api/datasets", Some(&token), None).await;
    let message = assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(message.contains("revoked"), "{message}");
    let (_, list) = s.get("/api/datasets").await;
    assert_eq!(list["pagination"]["total"], 0, "nothing was created");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_may_do_exactly_its_part() {
    let s = TestServer::start().await;
    let ds = s.dataset_with_items("d", vec![json!({"input": 1})]).await;
    let viewer = s.key("default", Role::Viewer).await;
    let member = s.key("default", Role::Member).await;

    // Viewer: reads, changes nothing.
    for path in [
        "/api/datasets".to_string(),
        format!("/api/datasets/{ds}/items"),
        "/api/plugins".into(),
        "/api/tenant".into(),
    ] {
        let (status, body) = call(&s, Method::GET, &path, Some(&viewer), None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let (status, body) = call(
        &s,
        Method::POST,
        "/api/datasets",
        Some(&viewer),
        Some(json!({"name": "v"})),
    )
    .await;
    let message = assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    assert!(message.contains("member"), "{message}");
    let (status, body) = call(
        &s,
        Method::DELETE,
        &format!("/api/datasets/{ds}"),
        Some(&viewer),
        None,
    )
    .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, _) = s.get(&format!("/api/datasets/{ds}")).await;
    assert_eq!(status, StatusCode::OK, "the viewer deleted nothing");

    // Member: datasets, items, plugins; not keys.
    let (status, body) = call(
        &s,
        Method::POST,
        &format!("/api/datasets/{ds}/items"),
        Some(&member),
        Some(json!({"input": 2})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for (method, path, body) in [
        (Method::GET, "/api/keys", None),
        (Method::POST, "/api/keys", Some(json!({"role": "admin"}))),
    ] {
        let (status, body) = call(&s, method, path, Some(&member), body).await;
        let message = assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
        assert!(message.contains("admin"), "{message}");
    }
    let (_, tenant) = call(&s, Method::GET, "/api/tenant", Some(&member), None).await;
    assert_eq!(tenant["id"], "default");
    assert_eq!(tenant["role"], "member");
    assert_eq!(tenant["usage"]["datasets"], 1);
    assert_eq!(tenant["limits"]["itemsInFlight"], 256);

    // Admin: creates keys; the token is shown once and works at once.
    let (status, created) = s
        .post("/api/keys", json!({"role": "viewer", "name": "dash"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().unwrap();
    assert!(token.starts_with(created["key"]["prefix"].as_str().unwrap()));
    let (status, me) = call(&s, Method::GET, "/api/tenant", Some(token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["role"], "viewer");
    let (_, keys) = s.get("/api/keys").await;
    assert!(
        !keys.to_string().contains(token),
        "listings never show a token"
    );
    let (status, body) = s.post("/api/keys", json!({"role": "root"})).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_ids_are_404_never_403() {
    let mut s = TestServer::start().await;
    s.act_as("tenant-a").await;
    let a_token = s.token.clone().unwrap();
    upload(&s, "echo").await;
    let ds = s
        .dataset_with_items("a-data", vec![json!({"input": "x"})])
        .await;
    let (_, items) = s.get(&format!("/api/datasets/{ds}/items")).await;
    let item = items["items"][0]["id"].as_str().unwrap().to_string();
    let (status, run) = s
        .post(
            &format!("/api/datasets/{ds}/runs"),
            json!({"targetType": "plugin", "targetId": "echo"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    let run = run["runId"].as_str().unwrap().to_string();
    let (_, keys) = s.get("/api/keys").await;
    let a_key = keys["keys"][0]["id"].as_str().unwrap().to_string();

    s.act_as("tenant-b").await;
    let b = s.token.clone().unwrap();
    for (method, path) in [
        (Method::GET, format!("/api/datasets/{ds}")),
        (Method::DELETE, format!("/api/datasets/{ds}")),
        (Method::GET, format!("/api/datasets/{ds}/items/{item}")),
        (Method::DELETE, format!("/api/datasets/{ds}/items/{item}")),
        (Method::GET, format!("/api/datasets/{ds}/runs/{run}")),
        (
            Method::GET,
            format!("/api/datasets/{ds}/runs/{run}/results"),
        ),
        (
            Method::POST,
            format!("/api/datasets/{ds}/runs/{run}/cancel"),
        ),
        (Method::DELETE, format!("/api/datasets/{ds}/runs/{run}")),
        (Method::GET, "/api/plugins/echo".into()),
        (Method::DELETE, "/api/plugins/echo".into()),
        (Method::DELETE, format!("/api/keys/{a_key}")),
    ] {
        let (status, body) = call(&s, method.clone(), &path, Some(&b), None).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    }
    // Tenant A still has everything, and its key still works.
    let (status, _) = call(
        &s,
        Method::GET,
        &format!("/api/datasets/{ds}/items/{item}"),
        Some(&a_token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "B's attempts changed nothing");
    let (status, _) = call(
        &s,
        Method::GET,
        &format!("/api/datasets/{ds}/runs/{run}"),
        Some(&a_token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_plugins_are_visible_to_every_tenant_and_read_only() {
    let plugins = tempfile::tempdir().unwrap();
    for p in ["echo", "exact-match"] {
        std::fs::copy(
            assay_test_support::plugin_wasm(p),
            plugins.path().join(format!("{}.wasm", p.replace('-', "_"))),
        )
        .unwrap();
    }
    let dir = plugins.path().to_path_buf();
    let mut s = TestServer::start_with(|c| c.plugin_dirs = vec![dir]).await;
    s.act_as("tenant-a").await;
    let (_, list) = s.get("/api/plugins").await;
    assert_eq!(list["pagination"]["total"], 2, "{list}");
    assert!(
        list["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["shared"] == true)
    );
    let (_, before) = s.get("/api/plugins/exact-match").await;

    // Shadowing a shipped id: 409 naming it, nothing replaced.
    let (status, body) = upload(&s, "exact-match").await;
    let message = assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    assert!(message.contains("exact-match"), "{message}");
    let (status, body) = s.delete("/api/plugins/exact-match").await;
    let message = assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    assert!(message.contains("shared"), "{message}");
    let (_, after) = s.get("/api/plugins/exact-match").await;
    assert_eq!(after["digest"], before["digest"]);
    assert_eq!(after["shared"], true);

    // Shared plugins run for any tenant.
    let ds = s
        .dataset_with_items("d", vec![json!({"input": "a", "expectedOutput": "a"})])
        .await;
    let (status, run) = s
        .post(
            &format!("/api/datasets/{ds}/runs"),
            json!({"targetType": "plugin", "targetId": "echo", "scorerIds": ["exact-match"]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    let seen = s
        .poll_run(
            &ds,
            run["runId"].as_str().unwrap(),
            Duration::from_millis(50),
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(seen.last().unwrap()["status"], "completed");

    // A tenant's own ids live in its namespace.
    let (status, own) = upload(&s, "contains").await;
    assert_eq!(status, StatusCode::CREATED, "{own}");
    assert_eq!(own["shared"], false);
    s.act_as("tenant-b").await;
    let (status, _) = s.get("/api/plugins/contains").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = upload(&s, "contains").await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "B has its own `contains`: {body}"
    );
    let (_, list) = s.get("/api/plugins").await;
    assert_eq!(list["pagination"]["total"], 3, "{list}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_limits_refuse_with_a_4xx_naming_the_limit_and_change_nothing() {
    let mut s = TestServer::start().await;
    s.act_as("small").await;
    upload(&s, "echo").await;
    let ds = s.dataset_with_items("one", vec![json!({"input": 1})]).await;
    set_limits(&s, "small", |l| {
        l.datasets = 1;
        l.queued_runs = 1;
        l.active_runs = 0;
        l.items_in_flight = 8;
        l.plugins = 1;
        l.stored_bytes = 200;
    })
    .await;

    let (status, body) = s.post("/api/datasets", json!({"name": "two"})).await;
    let message = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "limit_exceeded",
    );
    assert!(
        message.contains("datasets") && message.contains('1'),
        "{message}"
    );
    assert_eq!(body["details"], json!({"limit": "datasets", "value": 1}));
    let (_, list) = s.get("/api/datasets").await;
    assert_eq!(list["pagination"]["total"], 1);

    // A run option above a limit is refused, not reduced.
    let trigger = |extra: Value| {
        let mut body = json!({"targetType": "plugin", "targetId": "echo"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let (status, body) = s
        .post(
            &format!("/api/datasets/{ds}/runs"),
            trigger(json!({"maxConcurrency": 9})),
        )
        .await;
    let message = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "limit_exceeded",
    );
    assert!(
        message.contains("items-in-flight") && message.contains('8'),
        "{message}"
    );
    assert_eq!(body["field"], "maxConcurrency");

    // Queued runs: the second trigger is a 429 with Retry-After.
    let (status, body) = s
        .post(&format!("/api/datasets/{ds}/runs"), trigger(json!({})))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let resp = s
        .request(Method::POST, &format!("/api/datasets/{ds}/runs"))
        .json(&trigger(json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["details"], json!({"limit": "queued-runs", "value": 1}));
    let (_, runs) = s.get(&format!("/api/datasets/{ds}/runs")).await;
    assert_eq!(
        runs["pagination"]["total"], 1,
        "the refused trigger created nothing"
    );

    // Plugins and stored bytes.
    let (status, body) = upload(&s, "contains").await;
    let message = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "limit_exceeded",
    );
    assert!(message.contains("plugins"), "{message}");
    let (_, plugins) = s.get("/api/plugins").await;
    assert_eq!(plugins["pagination"]["total"], 1);
    let big = "x".repeat(300);
    let (status, body) = s
        .post(&format!("/api/datasets/{ds}/items"), json!({"input": big}))
        .await;
    let message = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "limit_exceeded",
    );
    assert!(
        message.contains("stored-bytes") && message.contains("200"),
        "{message}"
    );
    let (_, items) = s.get(&format!("/api/datasets/{ds}/items")).await;
    assert_eq!(items["pagination"]["total"], 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_options_above_an_operator_ceiling_are_refused() {
    let s = TestServer::start_with(|c| {
        c.assembly.ceilings = Ceilings {
            max_target_timeout: Duration::from_secs(1),
            max_memory_bytes: 32 << 20,
            ..Ceilings::default()
        }
    })
    .await;
    upload(&s, "echo").await;
    let ds = s.dataset_with_items("d", vec![json!({"input": 1})]).await;
    for (option, value, ceiling, limit) in [
        ("targetTimeout", 2000, 1000, "max-target-timeout"),
        ("maxMemoryBytes", 64 << 20, 32 << 20, "max-memory"),
    ] {
        let mut body = json!({"targetType": "plugin", "targetId": "echo"});
        body[option] = json!(value);
        let (status, body) = s.post(&format!("/api/datasets/{ds}/runs"), body).await;
        let message = assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit_exceeded",
        );
        assert!(message.contains(limit), "{message}");
        assert_eq!(body["details"], json!({"limit": limit, "value": ceiling}));
        assert_eq!(body["field"], option);
    }
    let (_, runs) = s.get(&format!("/api/datasets/{ds}/runs")).await;
    assert_eq!(runs["pagination"]["total"], 0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tenant_header_is_honoured_only_behind_a_trusted_proxy() {
    // By default the header proves nothing.
    let s = TestServer::start().await;
    s.key("team-a", Role::Admin).await;
    let (status, body) = s
        .send(
            s.client
                .get(s.url("/api/datasets"))
                .header("x-assay-tenant", "team-a"),
        )
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    s.stop().await;

    let s = TestServer::start_with(|c| c.auth = AuthMode::KeysOrTenantHeader).await;
    s.key("team-a", Role::Admin).await;
    let as_a = |method: Method, path: &str| {
        s.client
            .request(method, s.url(path))
            .header("x-assay-tenant", "team-a")
    };
    let (status, ds) = s
        .send(as_a(Method::POST, "/api/datasets").json(&json!({"name": "proxied"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ds}");
    let (_, mine) = s.get("/api/datasets").await;
    assert_eq!(
        mine["pagination"]["total"], 0,
        "the default tenant sees nothing"
    );
    let (status, body) = s
        .send(
            as_a(Method::POST, "/api/datasets")
                .header("x-assay-role", "viewer")
                .json(&json!({"name": "nope"})),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = s
        .send(
            s.client
                .get(s.url("/api/datasets"))
                .header("x-assay-tenant", "nobody"),
        )
        .await;
    let message = assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(
        message.contains("assay tenant create"),
        "tenants are never created on first use: {message}"
    );
    assert!(s.state().store().tenant_limits("nobody").await.is_err());
    let (status, body) = s
        .send(
            s.client
                .get(s.url("/api/datasets"))
                .header("x-assay-tenant", "bad tenant!"),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_tenant");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_auth_acts_as_default_on_loopback_and_is_refused_elsewhere() {
    let s = TestServer::start_with(|c| c.auth = AuthMode::Disabled).await;
    assert!(s.token.is_none());
    let (status, ds) = s.post("/api/datasets", json!({"name": "local"})).await;
    assert_eq!(status, StatusCode::CREATED, "{ds}");
    let (_, me) = s.get("/api/tenant").await;
    assert_eq!(me["id"], "default");
    assert_eq!(me["role"], "admin");
    s.stop().await;

    for addr in ["0.0.0.0:0", "[::]:0"] {
        let config = ServeConfig {
            addr: addr.parse().unwrap(),
            assembly: assay_runner::AssemblySettings {
                database_url: "sqlite::memory:".into(),
                ..Default::default()
            },
            auth: AuthMode::Disabled,
            ..ServeConfig::default()
        };
        match assay_api::start(config).await {
            Err(e @ ServeError::NoAuthOffLoopback { .. }) => {
                assert!(e.to_string().contains("loopback"), "{e}");
            }
            Err(e) => panic!("{addr}: wrong error {e}"),
            Ok(_) => panic!("{addr}: served without authentication"),
        }
    }
}
