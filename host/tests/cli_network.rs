//! A run against a model server: `assay run` with the shipped `openai-chat`
//! target and an OpenAI-compatible stub on loopback, through the real
//! binary. The grant decides what the plugin reaches; the API key is a
//! secret the host fills in, never stored with the results.

mod common;

use assay_openai_stub::{BackgroundStub, Stub, StubConfig};
use common::{Env, plugin};
use serde_json::Value;

const KEY: &str = "sk-network-test-0123456789";

/// The stub, requiring the key (the binary under test is another process).
fn start_stub() -> BackgroundStub {
    BackgroundStub::start(StubConfig {
        api_key: Some(KEY.into()),
        ..StubConfig::default()
    })
    .unwrap()
}

fn dataset(env: &Env) -> std::path::PathBuf {
    env.write(
        "questions.jsonl",
        r#"{"input": {"q": "Paris"}, "expectedOutput": "Paris"}
{"input": {"q": "Rome"}, "expectedOutput": "Rome"}"#,
    )
}

fn run_args(stub: &Stub, file: &std::path::Path) -> Vec<String> {
    let target_config = format!(
        r#"{{"model": "stub-model", "baseUrl": "{}/v1", "apiKeySecret": "OPENAI_API_KEY", "prompt": "{{{{input.q}}}}"}}"#,
        stub.url()
    );
    vec![
        "run".into(),
        "-d".into(),
        file.display().to_string(),
        "-t".into(),
        plugin("openai-chat"),
        "--target-config".into(),
        target_config,
        "-s".into(),
        plugin("exact-match"),
        "--json".into(),
        "-q".into(),
    ]
}

#[test]
fn a_granted_run_reaches_the_model_with_the_secret_and_stores_no_key() {
    let env = Env::new();
    let stub = start_stub();
    env.cmd()
        .args(["secret", "set", "OPENAI_API_KEY"])
        .write_stdin(format!("{KEY}\n"))
        .assert()
        .success();
    let file = dataset(&env);
    let host = stub.addr().to_string();
    let out = env
        .cmd()
        .args(run_args(&stub, &file))
        .args(["--allow-host", &host])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let report: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(report["succeededCount"], 2, "{report}");
    assert_eq!(
        report["scorers"][0]["mean"], 1.0,
        "the stub echoes the prompt: {report}"
    );
    assert_eq!(
        stub.stats().authorizations,
        [format!("Bearer {KEY}")],
        "the host filled in the secret"
    );
    let db = std::fs::read(env.path("assay.db")).unwrap();
    assert!(
        !db.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
        "the key is in the database in plain text"
    );
}

#[test]
fn without_a_grant_the_request_is_denied_and_the_error_names_the_host() {
    let env = Env::new();
    let stub = start_stub();
    let file = dataset(&env);
    let out = env
        .cmd()
        .args(run_args(&stub, &file))
        .assert()
        .get_output()
        .clone();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(report["failedCount"], 2, "{report}");
    let message = report["failures"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("denied") && message.contains("grant 127.0.0.1"),
        "{report}"
    );
    assert_eq!(stub.stats().requests, 0, "nothing reached the server");
}
