//! What a browser may do: CORS (`--cors-origin`), the `Host` allow-list
//! against DNS rebinding, and the playground's embedded pages.

use assay_api::CorsPolicy;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{TestServer, assert_error};

const ACAO: &str = "access-control-allow-origin";

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn preflight(s: &TestServer, origin: &str) -> reqwest::Response {
    s.client
        .request(Method::OPTIONS, s.url("/api/datasets"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .expect("answered")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cross_origin_access_by_default() {
    let s = TestServer::start().await;
    let resp = s
        .request(Method::GET, "/api/datasets")
        .header("origin", "http://app.test")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header(&resp, ACAO),
        None,
        "no CORS header without --cors-origin"
    );

    let resp = preflight(&s, "http://app.test").await;
    assert_eq!(header(&resp, ACAO), None);
    assert!(
        header(&resp, "access-control-allow-methods").is_none(),
        "a preflight is not granted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_origins_get_cors_answers_and_preflights() {
    let s = TestServer::start_with(|c| {
        c.cors = CorsPolicy::from_origins(&["http://app.test", "https://other.test:8443"]).unwrap();
    })
    .await;

    let resp = preflight(&s, "http://app.test").await;
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_eq!(header(&resp, ACAO), Some("http://app.test"));
    let methods = header(&resp, "access-control-allow-methods").unwrap_or("");
    for m in ["GET", "POST", "PATCH", "DELETE"] {
        assert!(methods.contains(m), "{methods}");
    }
    let headers = header(&resp, "access-control-allow-headers")
        .unwrap_or("")
        .to_ascii_lowercase();
    for h in ["authorization", "content-type", "x-assay-tenant"] {
        assert!(headers.contains(h), "{headers}");
    }

    // The real request from the allowed origin is readable by the page.
    let resp = s
        .request(Method::POST, "/api/datasets")
        .header("origin", "https://other.test:8443")
        .json(&json!({"name": "from a page"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(header(&resp, ACAO), Some("https://other.test:8443"));

    // Another origin gets no grant, for the preflight or the request.
    let resp = preflight(&s, "http://evil.test").await;
    assert_eq!(header(&resp, ACAO), None);
    let resp = s
        .request(Method::GET, "/api/datasets")
        .header("origin", "http://evil.test")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&resp, ACAO), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_origin_when_asked() {
    let s = TestServer::start_with(|c| c.cors = CorsPolicy::from_origins(&["*"]).unwrap()).await;
    let resp = preflight(&s, "http://whatever.test").await;
    assert!(resp.status().is_success());
    assert_eq!(header(&resp, ACAO), Some("*"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebound_host_name_is_refused_and_changes_nothing() {
    let s = TestServer::start().await;
    let port = s.base.rsplit(':').next().unwrap().to_string();
    let evil = format!("rebind.evil.test:{port}");

    // What a page on http://rebind.evil.test:<port> would send once its
    // name resolves to 127.0.0.1.
    let (status, body) = s
        .send(
            s.request(Method::POST, "/api/datasets")
                .header("host", &evil)
                .json(&json!({"name": "planted"})),
        )
        .await;
    let message = assert_error(status, &body, StatusCode::FORBIDDEN, "host_not_allowed");
    assert!(message.contains("rebind.evil.test"), "{message}");
    assert!(message.contains("--allowed-host"), "{message}");
    for path in ["/api/datasets", "/", "/health"] {
        let resp = s
            .request(Method::GET, path)
            .header("host", &evil)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
    }

    // The server's own names pass, with any port.
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "localhost".to_string(),
    ] {
        let (status, list) = s
            .send(
                s.request(Method::GET, "/api/datasets")
                    .header("host", &host),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{host}");
        assert_eq!(list["pagination"]["total"], 0, "nothing was planted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_hosts_replace_the_defaults() {
    let s = TestServer::start_with(|c| c.allowed_hosts = vec!["assay.internal".into()]).await;
    let get = |host: &'static str| {
        s.request(Method::GET, "/api/datasets")
            .header("host", host)
            .send()
    };
    assert_eq!(
        get("assay.internal:4111").await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        get("localhost:4111").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );

    let s = TestServer::start_with(|c| c.allowed_hosts = vec!["*".into()]).await;
    let resp = s
        .request(Method::GET, "/api/datasets")
        .header("host", "anything.test")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playground_is_served_from_the_binary() {
    let s = TestServer::start().await;
    let resp = s.client.get(s.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header(&resp, "content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = header(&resp, "content-security-policy").unwrap_or("");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(header(&resp, "x-content-type-options"), Some("nosniff"));
    let html = resp.text().await.unwrap();
    assert!(html.contains("/ui/app.js"), "{html}");

    let resp = s.client.get(s.url("/ui/app.js")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        header(&resp, "content-type")
            .unwrap_or("")
            .starts_with("text/javascript"),
    );
    let etag = header(&resp, "etag").expect("an etag").to_string();
    let resp = s
        .request(Method::GET, "/ui/app.js")
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);

    let (status, body) = s.get("/ui/missing.js").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = s.get("/ui/../src/lib.rs").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}
