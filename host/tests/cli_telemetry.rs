//! Trace export: `--otlp-endpoint` / `OTEL_EXPORTER_OTLP_ENDPOINT` sends a
//! span per run and per plugin call to an OTLP/HTTP collector (here a
//! loopback receiver started by the test); without it nothing is sent.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use common::{Env, example, plugin};

/// One request the collector received.
#[derive(Debug, Clone)]
struct Received {
    request_line: String,
    content_type: String,
    body: Vec<u8>,
}

/// A minimal OTLP/HTTP collector on loopback: answers 200 to every
/// request and keeps it.
fn collector() -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let keep = keep.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                loop {
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                        return;
                    }
                    let (mut length, mut content_type) = (0usize, String::new());
                    loop {
                        let mut line = String::new();
                        reader.read_line(&mut line).unwrap();
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        let (name, value) = line.split_once(':').unwrap();
                        match name.to_ascii_lowercase().as_str() {
                            "content-length" => length = value.trim().parse().unwrap(),
                            "content-type" => content_type = value.trim().to_string(),
                            _ => {}
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    keep.lock().unwrap().push(Received {
                        request_line: request_line.trim_end().to_string(),
                        content_type,
                        body,
                    });
                    writer
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .unwrap();
                }
            });
        }
    });
    (url, got)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn a_run_exports_a_span_per_run_and_per_plugin_call() {
    let env = Env::new();
    let (url, got) = collector();
    let report = {
        let out = env
            .cmd()
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &url)
            .args([
                "run",
                "-d",
                &example("capitals.jsonl"),
                "-t",
                &plugin("echo"),
                "-s",
                &plugin("exact-match"),
                "--json",
                "-q",
            ])
            .assert()
            .success();
        serde_json::from_slice::<serde_json::Value>(&out.get_output().stdout).unwrap()
    };
    let run_id = report["runId"].as_str().unwrap();
    let got = got.lock().unwrap().clone();
    assert!(!got.is_empty(), "the spans were sent before exit");
    for r in &got {
        assert_eq!(r.request_line, "POST /v1/traces HTTP/1.1");
        assert_eq!(r.content_type, "application/x-protobuf");
    }
    let body: Vec<u8> = got.iter().flat_map(|r| r.body.clone()).collect();
    // Span names and attributes are plain strings in the protobuf.
    for needle in [
        "run",
        "plugin_call",
        run_id,
        "echo",
        "exact-match",
        "target",
        "scorer",
        "assay",
    ] {
        assert!(
            contains(&body, needle),
            "no `{needle}` in the exported spans"
        );
    }
}

#[test]
fn without_an_endpoint_nothing_is_exported() {
    let env = Env::new();
    let (url, got) = collector();
    env.cmd()
        .args([
            "run",
            "-d",
            &example("capitals.jsonl"),
            "-t",
            &plugin("echo"),
            "--json",
            "-q",
        ])
        .assert()
        .success();
    // Sanity: the collector does answer.
    let _ = std::net::TcpStream::connect(url.trim_start_matches("http://")).unwrap();
    assert!(got.lock().unwrap().is_empty());
}
