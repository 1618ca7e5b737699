//! The output cache through the real binary: the shipped `openai-chat`
//! target against a loopback stub that counts requests. A second `assay run
//! --cache` sends only the request whose answer failed the first time; a
//! rerun keeps the cache on; `assay cache stats|clear` show and empty it.

mod common;

use assay_openai_stub::{BackgroundStub, StubConfig};
use common::{Env, plugin};
use serde_json::Value;

/// `assay run` of `file` through the registered `openai-chat` (granted the
/// stub's host), one item at a time, `extra` flags added; its report.
fn run(env: &Env, stub: &BackgroundStub, file: &str, extra: &[&str]) -> Value {
    let target_config = format!(
        r#"{{"model": "stub-model", "baseUrl": "{}/v1", "prompt": "{{{{input.q}}}}"}}"#,
        stub.url()
    );
    let mut args = vec![
        "run",
        "-d",
        file,
        "-t",
        "openai-chat",
        "--target-config",
        &target_config,
        "-s",
        "exact-match",
        "-j",
        "1",
        "--json",
        "-q",
    ];
    args.extend_from_slice(extra);
    env.json(&args)
}

fn setup(env: &Env, stub: &BackgroundStub) -> String {
    env.cmd()
        .args([
            "plugin",
            "add",
            &plugin("openai-chat"),
            &plugin("exact-match"),
        ])
        .assert()
        .success();
    let host = stub.addr().to_string();
    env.cmd()
        .args([
            "plugin",
            "grant",
            "openai-chat",
            "--host",
            &host,
            "--allow-http",
        ])
        .assert()
        .success();
    let file = env.write(
        "questions.jsonl",
        r#"{"input": {"q": "Paris"}, "expectedOutput": "Paris"}
{"input": {"q": "Rome"}, "expectedOutput": "Roma"}
{"input": {"q": "Oslo"}, "expectedOutput": "Oslo"}"#,
    );
    file.to_str().unwrap().to_string()
}

fn stdout(env: &Env, args: &[&str]) -> String {
    let out = env.cmd().args(args).assert().success().get_output().clone();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_cached_rerun_calls_the_model_only_for_what_failed() {
    let env = Env::new();
    // The first request fails (500): with one item at a time, the first
    // item's answer is a failure.
    let stub = BackgroundStub::start(StubConfig {
        fail_first: 1,
        fail_status: Some(500),
        ..StubConfig::default()
    })
    .unwrap();
    let file = setup(&env, &stub);

    let first = run(&env, &stub, &file, &["--cache"]);
    assert_eq!(stub.stats().requests, 3);
    assert_eq!(first["succeededCount"], 2, "{first}");
    assert_eq!(first["failedCount"], 1, "{first}");
    assert_eq!(first["cachedCount"], 0, "{first}");
    let first_id = first["runId"].as_str().unwrap().to_string();

    // The two answers are reused; the failure is not: it is asked again.
    let second = run(&env, &stub, &file, &["--cache"]);
    assert_eq!(
        stub.stats().requests,
        4,
        "one request: the item that failed"
    );
    assert_eq!(second["succeededCount"], 3, "{second}");
    assert_eq!(second["cachedCount"], 2, "{second}");
    let second_id = second["runId"].as_str().unwrap().to_string();

    // `runs show` says so, in the summary and in each result's metadata.
    let shown = env.json(&["runs", "show", &second_id, "--json"]);
    assert_eq!(shown["cachedCount"], 2, "{shown}");
    assert_eq!(shown["run"]["config"]["options"]["cache"], true, "{shown}");
    let text = stdout(&env, &["runs", "show", &second_id]);
    assert!(text.contains("cached    2 of 3 items"), "{text}");
    assert!(text.contains("output cache on"), "{text}");
    let results: Vec<Value> = stdout(&env, &["runs", "results", &second_id, "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let from: Vec<&Value> = results
        .iter()
        .map(|r| &r["targetMetadata"]["cached"]["fromRun"])
        .collect();
    assert_eq!(from[0], &Value::Null, "the item asked again was not cached");
    assert_eq!(from[1], first_id.as_str());
    assert_eq!(from[2], first_id.as_str());
    // The model's usage report travels with the cached answer.
    assert!(
        results[1]["targetMetadata"]["usage"].is_object(),
        "{results:?}"
    );

    // A rerun keeps the cache on: every answer is stored now.
    let again = env.json(&["runs", "rerun", &second_id, "--json", "-q"]);
    assert_eq!(stub.stats().requests, 4, "the rerun asked the model again");
    assert_eq!(again["cachedCount"], 3, "{again}");
    let again_id = again["runId"].as_str().unwrap();
    let shown = env.json(&["runs", "show", again_id, "--json"]);
    assert_eq!(shown["run"]["config"]["options"]["cache"], true, "{shown}");

    // Without --cache every item is a request.
    let plain = run(&env, &stub, &file, &[]);
    assert_eq!(stub.stats().requests, 7);
    assert_eq!(plain["cachedCount"], 0, "{plain}");
    let shown = env.json(&["runs", "show", plain["runId"].as_str().unwrap(), "--json"]);
    assert!(
        shown["run"]["config"]["options"].get("cache").is_none(),
        "{shown}"
    );

    // The cache can be inspected and emptied; then the model is asked again.
    let stats = env.json(&["cache", "stats", "--json"]);
    assert_eq!(stats["entries"], 3, "{stats}");
    assert!(stats["bytes"].as_i64().unwrap() > 0, "{stats}");
    assert_eq!(stats["limitBytes"], 1i64 << 30, "{stats}");
    let cleared = env.json(&["cache", "clear", "--json"]);
    assert_eq!(cleared["entries"], 3, "{cleared}");
    assert_eq!(env.json(&["cache", "stats", "--json"])["entries"], 0);
    run(&env, &stub, &file, &["--cache"]);
    assert_eq!(stub.stats().requests, 10);
}

#[test]
fn the_cache_budget_is_a_tenant_limit_and_unknown_tenants_are_named() {
    let env = Env::new();
    env.cmd()
        .args(["tenant", "limits", "default", "--set", "cache-bytes=64M"])
        .assert()
        .success();
    let stats = env.json(&["cache", "stats", "--json"]);
    assert_eq!(stats["limitBytes"], 64i64 << 20, "{stats}");
    let text = stdout(&env, &["tenant", "limits", "default"]);
    assert!(text.contains("cache-bytes"), "{text}");

    for cmd in ["stats", "clear"] {
        let out = env
            .cmd()
            .args(["cache", cmd, "--tenant", "nobody"])
            .assert()
            .failure()
            .get_output()
            .clone();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no tenant `nobody`"), "{cmd}: {err}");
    }
}

/// The key holds a secret's name, never its value: rotating the value
/// keeps the cache (the stub, which now refuses the old key, is not
/// asked), naming another secret does not.
#[test]
fn a_rotated_secret_keeps_the_cache_and_another_secret_name_does_not() {
    const KEY: &str = "sk-cache-test-0123456789";
    let env = Env::new();
    let stub = BackgroundStub::start(StubConfig {
        api_key: Some(KEY.into()),
        ..StubConfig::default()
    })
    .unwrap();
    let file = setup(&env, &stub);
    let set_secret = |name: &str, value: &str| {
        env.cmd()
            .args(["secret", "set", name])
            .write_stdin(value.to_string())
            .assert()
            .success();
    };
    let run_with = |secret: &str| {
        let config = format!(
            r#"{{"model": "stub-model", "baseUrl": "{}/v1", "apiKeySecret": "{secret}", "prompt": "{{{{input.q}}}}"}}"#,
            stub.url()
        );
        env.json(&[
            "run",
            "-d",
            &file,
            "-t",
            "openai-chat",
            "--target-config",
            &config,
            "-s",
            "exact-match",
            "--cache",
            "--json",
            "-q",
        ])
    };
    set_secret("OPENAI_API_KEY", KEY);
    let first = run_with("OPENAI_API_KEY");
    assert_eq!(first["succeededCount"], 3, "{first}");
    assert_eq!(stub.stats().requests, 3);

    set_secret("OPENAI_API_KEY", "sk-rotated-0000");
    let rotated = run_with("OPENAI_API_KEY");
    assert_eq!(stub.stats().requests, 3, "the rotated key was not sent");
    assert_eq!(rotated["cachedCount"], 3, "{rotated}");

    set_secret("OTHER_KEY", KEY);
    let other = run_with("OTHER_KEY");
    assert_eq!(
        stub.stats().requests,
        6,
        "another secret name is another key"
    );
    assert_eq!(other["cachedCount"], 0, "{other}");
    assert_eq!(other["succeededCount"], 3, "{other}");

    // The stored outputs hold no secret value.
    let mut bytes = Vec::new();
    for name in ["assay.db", "assay.db-wal"] {
        if let Ok(b) = std::fs::read(env.path(name)) {
            bytes.extend(b);
        }
    }
    assert!(!bytes.is_empty());
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains(KEY), "a secret value reached the database");
}
