//! Many, idle or slow clients: request heads and bodies that never finish
//! are cut off, the connection cap makes room by closing idle connections,
//! and requests over the in-flight limit are shed with 503 and
//! `Retry-After` while `/health` keeps answering.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{TestServer, assert_error};

/// Raises this process's open-file soft limit to its hard limit (the test
/// holds thousands of sockets, each end counted in the same process).
fn raise_open_files() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).expect("raise the open-file limit")
}

fn addr(server: &TestServer) -> String {
    server.base.trim_start_matches("http://").to_string()
}

/// Whether the server closed `stream` within `within` (reads until end of
/// file or a reset; sends `tick` every 100 ms meanwhile, if given).
async fn closed_within(stream: &mut TcpStream, within: Duration, tick: Option<&[u8]>) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 1024];
    while Instant::now() < deadline {
        if let Some(tick) = tick
            && stream.write_all(tick).await.is_err()
        {
            return true;
        }
        match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) | Err(_) => {}
        }
    }
    false
}

/// Reads a whole answer from `stream` (until the server closes it or
/// `within` passes) and returns its status line and text.
async fn read_answer(stream: &mut TcpStream, within: Duration) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    if out.windows(4).any(|w| w == b"\r\n\r\n") && out.ends_with(b"}") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_request_head_sent_slowly_or_never_is_cut_off() {
    let server = TestServer::start_with(|c| {
        c.limits.header_timeout = Duration::from_millis(500);
    })
    .await;
    let addr = addr(&server);
    // Slowloris: a head that never ends, one header every 100 ms.
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await
            .unwrap();
        slow.push(s);
    }
    // And connections that send nothing at all.
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    let started = Instant::now();
    for s in &mut slow {
        assert!(
            closed_within(s, Duration::from_secs(5), Some(b"x-slow: 1\r\n")).await,
            "a head still unfinished after 5 s must be cut off (header timeout 500 ms)"
        );
    }
    for s in &mut idle {
        assert!(
            closed_within(s, Duration::from_secs(5), None).await,
            "a connection that sends nothing must be closed"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    // A prompt client is unaffected.
    let (status, _) = server.get("/health").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn at_the_connection_cap_idle_connections_make_room_for_health() {
    raise_open_files();
    let cap = 50;
    let server = TestServer::start_with(|c| c.limits.max_connections = cap).await;
    let addr = addr(&server);
    let mut idle = Vec::new();
    for _ in 0..500 {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    // Every request on a new connection, past the cap.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut took = Vec::new();
    for _ in 0..100 {
        let t = Instant::now();
        let r = client.get(server.url("/health")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        took.push(t.elapsed());
    }
    took.sort();
    assert!(
        took[98] < Duration::from_millis(100),
        "/health p99 with 500 idle connections over a cap of {cap}: {took:?}"
    );
    // The server kept at most `cap` of them open.
    let mut closed = 0;
    for s in &mut idle {
        if closed_within(s, Duration::from_millis(20), None).await {
            closed += 1;
        }
    }
    assert!(
        closed >= 500 - cap,
        "only {closed} of 500 idle connections were closed (cap {cap})"
    );
}

/// Sends a request head with `Content-Length: 100` and part of its body;
/// the handler then waits for the rest.
async fn stalled_upload(addr: &str, token: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/datasets HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\":"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s
}

#[tokio::test]
async fn requests_over_the_limit_get_503_with_retry_after_and_health_still_answers() {
    let server = TestServer::start_with(|c| c.limits.max_requests = 2).await;
    let addr = addr(&server);
    let token = server.token.clone().unwrap();
    let held = vec![
        stalled_upload(&addr, &token).await,
        stalled_upload(&addr, &token).await,
    ];
    // Both are in their handlers once a third is refused.
    let deadline = Instant::now() + Duration::from_secs(5);
    let (status, body, retry_after) = loop {
        let r = server
            .request(reqwest::Method::GET, "/api/datasets")
            .send()
            .await
            .unwrap();
        let status = r.status();
        let retry_after = r.headers().get("retry-after").cloned();
        let body: Value = r.json().await.unwrap();
        if status != StatusCode::OK || Instant::now() > deadline {
            break (status, body, retry_after);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_error(status, &body, StatusCode::SERVICE_UNAVAILABLE, "overloaded");
    assert_eq!(retry_after.expect("Retry-After").to_str().unwrap(), "1");
    let (status, _) = server.get("/health").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "/health is outside the request limit"
    );
    drop(held);
    // The permits come back with the connections.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _) = server.get("/api/datasets").await;
        if status == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {status} after the clients left"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_stalled_request_body_is_408() {
    let server = TestServer::start_with(|c| {
        c.limits.body_timeout = Duration::from_millis(300);
    })
    .await;
    let mut s = stalled_upload(&addr(&server), server.token.as_ref().unwrap()).await;
    let answer = read_answer(&mut s, Duration::from_secs(5)).await;
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "a body that stalls past the body timeout gets 408: {answer:?}"
    );
    assert!(answer.contains("\"code\":\"body_timeout\""), "{answer}");
}

#[tokio::test]
async fn a_request_not_answered_in_time_is_503_timeout() {
    // The body trickles in (one byte every 100 ms, within the body
    // timeout) but the whole request takes longer than the deadline.
    let server = TestServer::start_with(|c| {
        c.limits.request_timeout = Duration::from_millis(400);
    })
    .await;
    let mut s = stalled_upload(&addr(&server), server.token.as_ref().unwrap()).await;
    let started = Instant::now();
    let mut answer = String::new();
    while started.elapsed() < Duration::from_secs(5) {
        if s.write_all(b" ").await.is_err() {
            break;
        }
        answer = read_answer(&mut s, Duration::from_millis(100)).await;
        if !answer.is_empty() {
            break;
        }
    }
    if answer.is_empty() {
        answer = read_answer(&mut s, Duration::from_secs(1)).await;
    }
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    assert!(answer.contains("\"code\":\"timeout\""), "{answer}");
}
