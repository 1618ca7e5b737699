use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::thread;

use serde_json::json;
use wasip2::http::types::{DnsErrorPayload, ErrorCode};

use super::*;
use crate::ErrorKind;

fn status(code: u16, body: &str) -> PluginError {
    Response::new(code, vec![], body.as_bytes().to_vec(), "api.example.com")
        .error_for_status()
        .expect_err("an error status")
        .into()
}

#[test]
fn rate_limits_and_server_errors_are_transient() {
    for code in [429, 500, 502, 503, 504] {
        let err = status(code, "");
        assert_eq!(err.kind(), ErrorKind::Transient, "{code}");
        assert_eq!(err.message(), format!("api.example.com answered {code}"));
    }
}

#[test]
fn other_client_errors_fail_with_the_servers_message() {
    let openai =
        r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#;
    let err = status(401, openai);
    assert_eq!(err.kind(), ErrorKind::Failed);
    assert_eq!(
        err.message(),
        "api.example.com answered 401: Incorrect API key provided"
    );
    assert_eq!(
        status(400, r#"{"error":"model not found"}"#).message(),
        "api.example.com answered 400: model not found"
    );
    assert_eq!(
        status(422, r#"{"detail":"field required"}"#).message(),
        "api.example.com answered 422: field required"
    );
    assert_eq!(
        status(404, "no such route\n").message(),
        "api.example.com answered 404: no such route"
    );
    // JSON without a message is quoted as text.
    assert_eq!(
        status(403, r#"{"code":7}"#).message(),
        r#"api.example.com answered 403: {"code":7}"#
    );
    assert_eq!(status(418, "").message(), "api.example.com answered 418");
}

#[test]
fn long_error_bodies_are_truncated() {
    let body = "é".repeat(2000);
    let message = status(400, &body).message().to_owned();
    assert!(message.ends_with('…'), "{message}");
    assert_eq!(message.chars().filter(|c| *c == 'é').count(), 500);
    // The message inside a JSON body too.
    let json_body = json!({"error": {"message": "x".repeat(5000)}}).to_string();
    assert!(status(400, &json_body).message().len() < 600);
}

#[test]
fn success_and_redirects_are_responses() {
    for code in [200, 201, 204, 301, 304] {
        assert!(
            Response::new(code, vec![], vec![], "h")
                .error_for_status()
                .is_ok()
        );
    }
}

#[test]
fn response_accessors() {
    let r = Response::new(
        200,
        vec![
            ("Content-Type".into(), "application/json".into()),
            ("x-request-id".into(), "abc".into()),
        ],
        br#"{"answer": 42}"#.to_vec(),
        "h",
    );
    assert!(r.is_success());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("X-Request-Id"), Some("abc"));
    assert_eq!(r.header("missing"), None);
    assert_eq!(r.text(), r#"{"answer": 42}"#);
    let v: serde_json::Value = r.json().unwrap();
    assert_eq!(v["answer"], 42);
    let not_json = Response::new(200, vec![], b"<html>oops".to_vec(), "h");
    let err = not_json.json::<serde_json::Value>().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Failed);
    assert!(err.message().contains("<html>oops"), "{err}");
}

#[test]
fn the_hosts_denial_fails_naming_the_host() {
    let err: PluginError = from_error_code(&ErrorCode::HttpRequestDenied, "api.example.com").into();
    assert_eq!(err.kind(), ErrorKind::Failed);
    assert_eq!(
        err.message(),
        "the request to api.example.com was denied by the assay host: ask the operator to grant api.example.com to this plugin"
    );
    let internal = from_error_code(&ErrorCode::DestinationIpProhibited, "10.0.0.1");
    assert!(matches!(internal, HttpError::Denied { .. }));
    assert!(internal.to_string().contains("10.0.0.1"));
}

#[test]
fn timeouts_and_connection_errors_are_transient() {
    let transient = [
        ErrorCode::ConnectionTimeout,
        ErrorCode::ConnectionReadTimeout,
        ErrorCode::HttpResponseTimeout,
        ErrorCode::DnsTimeout,
        ErrorCode::ConnectionRefused,
        ErrorCode::ConnectionTerminated,
        ErrorCode::DestinationUnavailable,
        ErrorCode::HttpResponseIncomplete,
        ErrorCode::DnsError(DnsErrorPayload {
            rcode: Some("SERVFAIL".into()),
            info_code: None,
        }),
    ];
    for code in transient {
        let err: PluginError = from_error_code(&code, "api.example.com").into();
        assert_eq!(err.kind(), ErrorKind::Transient, "{code:?}");
        assert!(err.message().contains("api.example.com"), "{err}");
    }
    let timeout = from_error_code(&ErrorCode::ConnectionTimeout, "h").to_string();
    assert_eq!(timeout, "the request to h timed out (connecting)");
}

#[test]
fn tls_and_protocol_errors_fail() {
    for code in [
        ErrorCode::TlsCertificateError,
        ErrorCode::HttpProtocolError,
        ErrorCode::HttpRequestUriInvalid,
        ErrorCode::InternalError(Some("boom".into())),
    ] {
        let err: PluginError = from_error_code(&code, "h").into();
        assert_eq!(err.kind(), ErrorKind::Failed, "{code:?}");
    }
}

#[test]
fn requests_are_checked_before_sending() {
    let bad = [
        Request::get("api.example.com/v1"),
        Request::get("https://example.com").header("bad name", "v"),
        Request::get("https://example.com").header("x", "a\r\nInjected: 1"),
    ];
    for request in bad {
        let err = request.send().unwrap_err();
        assert!(matches!(err, HttpError::InvalidRequest(_)), "{err:?}");
        assert_eq!(PluginError::from(err).kind(), ErrorKind::Failed);
    }
    let unserializable = std::collections::HashMap::from([((1, 2), 3)]);
    let err = Request::post("http://127.0.0.1:1/")
        .json(&unserializable)
        .send()
        .unwrap_err();
    assert!(err.to_string().contains("cannot be serialized"), "{err}");
}

#[test]
fn builder_keeps_secret_placeholders_as_written() {
    let r = Request::post("https://api.openai.com/v1/chat/completions")
        .header("Authorization", "Bearer {{secret.OPENAI_API_KEY}}")
        .json(&json!({"model": "m"}))
        .timeout(Duration::from_secs(5));
    assert_eq!(r.method(), Method::Post);
    assert_eq!(
        r.header_value("authorization"),
        Some("Bearer {{secret.OPENAI_API_KEY}}")
    );
    assert_eq!(r.header_value("content-type"), Some("application/json"));
    assert_eq!(r.body_bytes(), br#"{"model":"m"}"#);
    // An explicit content type is kept.
    let r = Request::post("http://h/")
        .header("content-type", "application/vnd.api+json")
        .json(&json!(1));
    assert_eq!(r.headers().len(), 1);
}

/// A loopback server answering one request with `reply`, handing back the
/// request it read.
fn stub(reply: &'static str) -> (String, thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        (&stream).write_all(reply.as_bytes()).unwrap();
        head + &String::from_utf8_lossy(&body)
    });
    (url, handle)
}

#[test]
fn native_client_round_trips_against_a_loopback_stub() {
    let (url, server) = stub(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\nconnection: close\r\n\r\n{\"ok\":true}",
    );
    let response = Request::post(format!("{url}/v1/chat?x=1"))
        .header("authorization", "Bearer {{secret.KEY}}")
        .json(&json!({"q": "hi"}))
        .send()
        .unwrap();
    let seen = server.join().unwrap();
    assert!(seen.starts_with("POST /v1/chat?x=1 HTTP/1.1\r\n"), "{seen}");
    assert!(
        seen.to_ascii_lowercase()
            .contains("authorization: bearer {{secret.key}}"),
        "{seen}"
    );
    assert!(seen.ends_with(r#"{"q":"hi"}"#), "{seen}");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(
        response.json::<serde_json::Value>().unwrap(),
        json!({"ok": true})
    );
}

#[test]
fn native_client_maps_a_429_to_transient() {
    let (url, server) = stub(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-length: 45\r\nconnection: close\r\n\r\n{\"error\":{\"message\":\"Rate limit reached...\"}}",
    );
    let err: PluginError = Request::get(url)
        .send()
        .and_then(Response::error_for_status)
        .unwrap_err()
        .into();
    server.join().unwrap();
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert_eq!(
        err.message(),
        "127.0.0.1 answered 429: Rate limit reached..."
    );
}

#[test]
fn native_connection_refused_is_transient() {
    // Bind, then close, to get a port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = Request::get(format!("http://127.0.0.1:{port}/"))
        .timeout(Duration::from_secs(5))
        .send()
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}
