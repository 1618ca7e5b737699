//! Outbound HTTP from the sandbox, against real servers on 127.0.0.1: the
//! grant decides every request, limits cut requests off with a message that
//! says which limit, secrets reach the server and never the results.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use assay_plugin_host::{
    CallFailure, Limits, NetworkAccess, NetworkGrant, NetworkLimits, Secrets, StaticResolver,
    TargetOutcome,
};
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{any, get};
use common::{item, plugin};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const SECRET: &str = "sk-test-5f0c2e9a71";

/// A loopback server: `/echo` answers with the request's `authorization`
/// header, `/big` with 64 KiB, `/throttle` with 429 and `Retry-After: 7`.
/// It records the `authorization` headers and counts requests.
struct Server {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Server {
    async fn start() -> Server {
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let record = seen.clone();
        let echo = move |headers: HeaderMap, body: String| {
            let record = record.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default();
                record.lock().unwrap().push(auth.clone());
                format!("auth={auth} body={}", body.len())
            }
        };
        let app = Router::new()
            .route("/echo", any(echo))
            .route("/big", get(|| async { "x".repeat(64 * 1024) }))
            .route(
                "/throttle",
                get(|| async {
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        [("retry-after", "7")],
                        "slow down",
                    )
                        .into_response()
                }),
            );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Server { port, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

fn grant(hosts: &[&str], allow_http: bool) -> NetworkGrant {
    NetworkGrant {
        hosts: hosts.iter().map(|h| h.parse().unwrap()).collect(),
        allow_http,
        limits: NetworkLimits::default(),
        rate_limits: Vec::new(),
    }
}

fn access(grant: NetworkGrant) -> NetworkAccess {
    NetworkAccess::new(grant, Arc::new(Secrets::new().with("KEY", SECRET)))
}

async fn probe(input: Value, access: &NetworkAccess) -> Result<TargetOutcome, CallFailure> {
    plugin("net-probe")
        .run_target_with_network(&item(input, None), None, &Limits::default(), access)
        .await
}

async fn probe_ok(input: Value, access: &NetworkAccess) -> TargetOutcome {
    probe(input, access).await.expect("call succeeds")
}

/// The first request's result as the plugin saw it.
fn first(outcome: &TargetOutcome) -> &Value {
    &outcome.output["results"][0]
}

#[tokio::test]
async fn a_granted_host_is_reached_and_the_exchange_recorded() {
    let server = Server::start().await;
    let granted = access(grant(&[&format!("127.0.0.1:{}", server.port)], true));
    let out = probe_ok(json!({"url": server.url("/echo")}), &granted).await;
    assert_eq!(first(&out)["status"], 200, "{}", out.output);
    assert_eq!(server.requests(), 1);
    let exchange = &out.network.exchanges[0];
    assert_eq!(exchange.host, format!("127.0.0.1:{}", server.port));
    assert_eq!(exchange.status, Some(200));
    assert!(out.network.refusals.is_empty());
    assert!(
        out.logs.stdout.contains("net-probe got: Ok((200"),
        "{}",
        out.logs.stdout
    );
}

#[tokio::test]
async fn an_ungranted_host_is_denied_before_connecting_and_the_failure_names_it() {
    let server = Server::start().await;
    let other = access(grant(&["api.openai.com"], true));
    let input = json!({"url": server.url("/echo"), "failOnError": true});
    let failure = probe(input, &other).await.expect_err("denied");
    let message = failure.error.to_string();
    assert!(message.contains("HttpRequestDenied"), "{message}");
    assert!(
        message.contains(&format!(
            "(network: host 127.0.0.1:{} is not granted to this plugin (granted: api.openai.com))",
            server.port
        )),
        "{message}"
    );
    assert_eq!(server.requests(), 0, "no request may reach the server");

    let nothing = probe_ok(json!({"url": server.url("/echo")}), &NetworkAccess::none()).await;
    assert_eq!(first(&nothing)["error"], "ErrorCode::HttpRequestDenied");
    assert!(
        nothing.network.refusals[0].contains("no network is granted to this plugin"),
        "{:?}",
        nothing.network.refusals
    );
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn plain_http_is_refused_unless_the_grant_allows_it() {
    let server = Server::start().await;
    let https_only = access(grant(&[&format!("127.0.0.1:{}", server.port)], false));
    let out = probe_ok(json!({"url": server.url("/echo")}), &https_only).await;
    assert_eq!(first(&out)["error"], "ErrorCode::HttpRequestDenied");
    assert!(
        out.network.refusals[0].contains("plain http to 127.0.0.1"),
        "{:?}",
        out.network.refusals
    );
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn a_name_resolving_to_an_internal_address_is_refused_unless_named() {
    let server = Server::start().await;
    let loopback = "127.0.0.1".parse().unwrap();
    let resolver = Arc::new(
        StaticResolver::new()
            .with("api.svc.test", &[loopback])
            .with("localhost", &[loopback]),
    );
    let port = server.port;
    let wildcard =
        access(grant(&[&format!("*.svc.test:{port}")], true)).with_resolver(resolver.clone());

    // The wildcard matches, but the name resolves to loopback: refused.
    let out = probe_ok(
        json!({"url": format!("http://api.svc.test:{port}/echo")}),
        &wildcard,
    )
    .await;
    assert_eq!(first(&out)["error"], "ErrorCode::DestinationIpProhibited");
    assert!(
        out.network.refusals[0]
            .contains("resolves to 127.0.0.1, an internal address; only a grant that names the address itself may reach it"),
        "{:?}",
        out.network.refusals
    );
    // Outside the wildcard: not granted at all.
    let out = probe_ok(
        json!({"url": format!("http://other.test:{port}/echo")}),
        &wildcard,
    )
    .await;
    assert!(
        out.network.refusals[0].contains("is not granted to this plugin (granted: *.svc.test"),
        "{:?}",
        out.network.refusals
    );
    assert_eq!(server.requests(), 0);

    // `localhost` names loopback itself, so granting it reaches it.
    let named = access(grant(&[&format!("localhost:{port}")], true)).with_resolver(resolver);
    let out = probe_ok(
        json!({"url": format!("http://localhost:{port}/echo")}),
        &named,
    )
    .await;
    assert_eq!(first(&out)["status"], 200, "{}", out.output);
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn requests_beyond_max_requests_are_denied() {
    let server = Server::start().await;
    let mut g = grant(&[&format!("127.0.0.1:{}", server.port)], true);
    g.limits.max_requests = 2;
    let out = probe_ok(json!({"url": server.url("/echo"), "count": 3}), &access(g)).await;
    let results = out.output["results"].as_array().unwrap();
    assert_eq!(results[0]["status"], 200);
    assert_eq!(results[1]["status"], 200);
    assert_eq!(results[2]["error"], "ErrorCode::HttpRequestDenied");
    assert_eq!(server.requests(), 2);
    assert_eq!(
        out.network.refusals,
        vec!["the plugin made more than 2 requests in one call (the grant's maxRequests)"]
    );
}

#[tokio::test]
async fn a_response_over_max_response_bytes_is_cut_with_a_clear_error() {
    let server = Server::start().await;
    let mut g = grant(&[&format!("127.0.0.1:{}", server.port)], true);
    g.limits.max_response_bytes = 1024;
    let input = json!({"url": server.url("/big"), "failOnError": true});
    let failure = probe(input, &access(g)).await.expect_err("too big");
    let message = failure.error.to_string();
    assert!(
        message.contains("response body size exceeds limit"),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "the response from 127.0.0.1:{} is larger than the grant's maxResponseBytes (1024 bytes)",
            server.port
        )),
        "{message}"
    );
}

#[tokio::test]
async fn a_request_body_over_max_request_bytes_is_refused() {
    let server = Server::start().await;
    let mut g = grant(&[&format!("127.0.0.1:{}", server.port)], true);
    g.limits.max_request_bytes = 1000;
    let input = json!({"url": server.url("/echo"), "method": "POST", "bodyBytes": 100_000});
    let out = probe_ok(input, &access(g)).await;
    assert!(first(&out).get("error").is_some(), "{}", out.output);
    assert!(
        out.network.refusals[0].contains("larger than the grant's maxRequestBytes (1000 bytes)"),
        "{:?}",
        out.network.refusals
    );
    assert_eq!(server.requests(), 0, "the server never got a whole body");
}

#[tokio::test]
async fn a_secret_reaches_the_server_but_never_the_results() {
    let server = Server::start().await;
    let granted = access(grant(&[&format!("127.0.0.1:{}", server.port)], true));
    let input = json!({
        "url": server.url("/echo"),
        "headers": {"authorization": "Bearer {{secret.KEY}}"},
    });
    let out = probe_ok(input.clone(), &granted).await;
    assert_eq!(
        server.seen.lock().unwrap()[0],
        format!("Bearer {SECRET}"),
        "the server gets the value"
    );
    // The server echoed it back; the plugin put it in its output and stdout.
    let text = format!("{} {:?}", out.output, out.logs);
    assert!(!text.contains(SECRET), "secret leaked: {text}");
    assert_eq!(first(&out)["body"], "auth=Bearer [secret KEY] body=0");
    assert!(
        out.logs.stdout.contains("[secret KEY]"),
        "{}",
        out.logs.stdout
    );

    // Echoed into the call's error message: redacted too.
    let mut failing = input;
    failing["failWithBody"] = json!(true);
    let failure = probe(failing, &granted).await.expect_err("fails");
    let text = format!("{} {:?}", failure.error, failure.logs);
    assert!(!text.contains(SECRET), "secret leaked: {text}");
    assert!(failure.error.to_string().contains("[secret KEY]"));
}

#[tokio::test]
async fn an_unknown_secret_fails_the_request_naming_it() {
    let server = Server::start().await;
    let granted = access(grant(&[&format!("127.0.0.1:{}", server.port)], true));
    let input = json!({
        "url": server.url("/echo"),
        "headers": {"authorization": "Bearer {{secret.MISSING}}"},
        "failOnError": true,
    });
    let failure = probe(input, &granted).await.expect_err("unknown secret");
    assert!(
        failure
            .error
            .to_string()
            .contains("the request uses secret MISSING, which is not given to this plugin"),
        "{}",
        failure.error
    );
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn a_secret_placeholder_for_an_ungranted_host_is_never_filled() {
    let server = Server::start().await;
    let other = access(grant(&["api.openai.com"], true));
    let input = json!({
        "url": server.url("/echo"),
        "headers": {"authorization": "Bearer {{secret.KEY}}"},
    });
    let out = probe_ok(input, &other).await;
    assert_eq!(first(&out)["error"], "ErrorCode::HttpRequestDenied");
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn throttling_and_retry_after_are_reported() {
    let server = Server::start().await;
    let granted = access(grant(&[&format!("127.0.0.1:{}", server.port)], true));
    let out = probe_ok(json!({"url": server.url("/throttle")}), &granted).await;
    assert_eq!(first(&out)["status"], 429);
    assert!(out.network.throttled());
    assert_eq!(out.network.retry_after(), Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn a_raw_tcp_socket_is_refused_even_to_a_granted_address() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let granted = access(grant(&[&format!("127.0.0.1:{port}")], true));
    let out = probe_ok(json!({"tcp": format!("127.0.0.1:{port}")}), &granted).await;
    let tcp = out.output["tcp"].as_str().unwrap();
    assert!(tcp.starts_with("refused"), "{tcp}");
    let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(accepted.is_err(), "nothing may connect");
}

/// A server that reads one request head and never answers; it reports
/// when the client closes the connection.
async fn silent_server() -> (
    u16,
    tokio::sync::oneshot::Receiver<()>,
    tokio::sync::oneshot::Receiver<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (got_request, got_request_rx) = tokio::sync::oneshot::channel();
    let (closed, closed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let mut head = Vec::new();
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before the request head");
            head.extend_from_slice(&buf[..n]);
        }
        let _ = got_request.send(());
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = closed.send(());
        let _ = socket.shutdown().await;
    });
    (port, got_request_rx, closed_rx)
}

#[tokio::test]
async fn dropping_the_call_closes_its_connection() {
    let (port, got_request, closed) = silent_server().await;
    let granted = access(grant(&[&format!("127.0.0.1:{port}")], true));
    let input = json!({"url": format!("http://127.0.0.1:{port}/hang")});
    let call = tokio::spawn(async move { probe(input, &granted).await });
    tokio::time::timeout(Duration::from_secs(10), got_request)
        .await
        .expect("the request reached the server")
        .unwrap();
    call.abort();
    tokio::time::timeout(Duration::from_secs(5), closed)
        .await
        .expect("the server saw the connection close after the call was dropped")
        .unwrap();
}

#[tokio::test]
async fn a_request_over_the_total_timeout_fails_naming_the_limit() {
    let (port, _got_request, _closed) = silent_server().await;
    let mut g = grant(&[&format!("127.0.0.1:{port}")], true);
    g.limits.timeout_ms = 300;
    let input = json!({"url": format!("http://127.0.0.1:{port}/hang"), "failOnError": true});
    let failure = probe(input, &access(g)).await.expect_err("times out");
    let message = failure.error.to_string();
    assert!(
        message.contains(&format!(
            "the request to 127.0.0.1:{port} took longer than the grant's timeoutMs (300 ms)"
        )),
        "{message}"
    );
    assert_eq!(failure.network.exchanges[0].status, None);
}

#[tokio::test]
async fn https_is_tls_verified_and_never_downgraded() {
    // A granted https host whose server speaks plain HTTP: the TLS
    // handshake fails, nothing is sent in clear.
    let server = Server::start().await;
    let granted = access(grant(&[&format!("127.0.0.1:{}", server.port)], false));
    let url = format!("https://127.0.0.1:{}/echo", server.port);
    let out = probe_ok(json!({"url": url}), &granted).await;
    let error = first(&out)["error"].as_str().unwrap_or_default();
    assert!(error.contains("Tls"), "{}", out.output);
    assert_eq!(server.requests(), 0);
    assert_eq!(out.network.exchanges[0].status, None);
}

/// A keep-alive HTTP/1.1 server that counts the connections it accepts and
/// the requests it answers (`ok` to a body-less request, or 64 KiB to
/// `/big`). With `close_when_idle` it closes each connection once it has
/// answered, as a server whose idle timeout is shorter than the pool's.
async fn counting_server_with(
    close_when_idle: bool,
) -> (
    u16,
    Arc<std::sync::atomic::AtomicUsize>,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let (c, r) = (connections.clone(), requests.clone());
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            c.fetch_add(1, Ordering::SeqCst);
            let r = r.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut head = Vec::new();
                loop {
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let end = head.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    let big = head.starts_with(b"GET /big ");
                    head.drain(..end);
                    r.fetch_add(1, Ordering::SeqCst);
                    let body = if big {
                        "x".repeat(64 * 1024)
                    } else {
                        "ok".into()
                    };
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if socket.write_all(answer.as_bytes()).await.is_err() || close_when_idle {
                        return;
                    }
                }
            });
        }
    });
    (port, connections, requests)
}

async fn counting_server() -> (
    u16,
    Arc<std::sync::atomic::AtomicUsize>,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    counting_server_with(false).await
}

fn count(n: &std::sync::atomic::AtomicUsize) -> usize {
    n.load(std::sync::atomic::Ordering::SeqCst)
}

#[tokio::test]
async fn calls_sharing_an_access_reuse_one_keep_alive_connection() {
    let (port, connections, requests) = counting_server().await;
    let granted = access(grant(&[&format!("127.0.0.1:{port}")], true));
    let input = json!({"url": format!("http://127.0.0.1:{port}/a"), "failOnError": true});
    for _ in 0..3 {
        let out = probe_ok(input.clone(), &granted.clone()).await;
        assert_eq!(first(&out)["status"], 200, "{}", out.output);
    }
    assert_eq!(count(&requests), 3);
    assert_eq!(count(&connections), 1, "three calls, one connection");
    assert_eq!(granted.connections.idle_count(), 1);

    // Another access (another run) never gets this run's connections.
    let other = access(grant(&[&format!("127.0.0.1:{port}")], true));
    probe_ok(input, &other).await;
    assert_eq!(count(&connections), 2);
}

#[tokio::test]
async fn a_connection_whose_response_was_cut_off_is_not_reused() {
    let (port, connections, _requests) = counting_server().await;
    let mut g = grant(&[&format!("127.0.0.1:{port}")], true);
    g.limits.max_response_bytes = 1024;
    let granted = access(g);
    let big = json!({"url": format!("http://127.0.0.1:{port}/big")});
    let out = probe(big, &granted).await;
    assert!(
        granted.connections.idle_count() == 0,
        "a cut-off response leaves its connection out of the pool: {out:?}"
    );
    let small = json!({"url": format!("http://127.0.0.1:{port}/a"), "failOnError": true});
    probe_ok(small, &granted).await;
    assert_eq!(
        count(&connections),
        2,
        "the next call opened a new connection"
    );
}

#[tokio::test]
async fn a_pooled_connection_is_not_used_once_the_grant_refuses_its_host() {
    let (port, connections, requests) = counting_server().await;
    let granted = access(grant(&[&format!("127.0.0.1:{port}")], true));
    let input = json!({"url": format!("http://127.0.0.1:{port}/a")});
    probe_ok(input.clone(), &granted).await;
    assert_eq!(granted.connections.idle_count(), 1);
    // The same pool under a grant that names another host: the request is
    // refused before the pool is looked at.
    let mut narrowed = access(grant(&["example.com"], true));
    narrowed.connections = granted.connections.clone();
    let out = probe_ok(input, &narrowed).await;
    assert_ne!(first(&out)["status"], 200, "{}", out.output);
    assert_eq!((count(&connections), count(&requests)), (1, 1));
}

#[tokio::test]
async fn a_pooled_connection_the_server_closed_while_idle_is_replaced_without_an_error() {
    let (port, connections, requests) = counting_server_with(true).await;
    let granted = access(grant(&[&format!("127.0.0.1:{port}")], true));
    let input = json!({"url": format!("http://127.0.0.1:{port}/a"), "failOnError": true});
    for round in 0..3 {
        let out = probe(input.clone(), &granted)
            .await
            .unwrap_or_else(|e| panic!("call {round} failed: {e:?}"));
        assert_eq!(first(&out)["status"], 200, "{}", out.output);
    }
    assert_eq!(count(&requests), 3);
    assert_eq!(count(&connections), 3, "a closed connection is not reused");
}
