//! `assay secret ...` and `assay plugin grant|revoke|info` on a real
//! database, through the real binary.

mod common;

use common::{Env, plugin};
use predicates::prelude::*;
use serde_json::json;

const VALUE: &str = "sk-cli-secret-0123456789";

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn a_secret_is_read_from_stdin_sealed_listed_by_name_and_deleted() {
    let env = Env::new();
    env.cmd()
        .args(["secret", "set", "OPENAI_API_KEY"])
        .write_stdin(format!("{VALUE}\n"))
        .assert()
        .success()
        .stderr(predicate::str::contains("Created a new secret key at"));

    // The key file was made private, and is reused (no notice the 2nd time).
    let key_file = env.path("data/assay/secret.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&key_file), 0o600);
        assert_eq!(mode(key_file.parent().unwrap()), 0o700);
    }
    let key = std::fs::read_to_string(&key_file).unwrap();
    env.cmd()
        .args(["secret", "set", "OTHER"])
        .write_stdin("v2")
        .assert()
        .success()
        .stderr(predicate::str::contains("Created").not());
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key);

    // Listed by name, never by value.
    let out = env
        .cmd()
        .args(["secret", "list"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(contains(&out, "OPENAI_API_KEY") && contains(&out, "OTHER"));
    assert!(!contains(&out, VALUE));
    let listed = env.json(&["secret", "list", "--json"]);
    assert_eq!(listed[0]["name"], "OPENAI_API_KEY");
    assert!(!listed.to_string().contains(VALUE));

    // The database does not hold the value in plain text.
    for file in ["assay.db", "assay.db-wal"] {
        let bytes = std::fs::read(env.path(file)).unwrap_or_default();
        assert!(!contains(&bytes, VALUE), "{file} holds the value");
    }

    env.cmd()
        .args(["secret", "delete", "OTHER"])
        .assert()
        .success();
    env.cmd()
        .args(["secret", "delete", "OTHER"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no secret named OTHER"));
    assert_eq!(
        env.json(&["secret", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn hostile_secret_input_is_refused_with_a_clear_error() {
    let env = Env::new();
    env.cmd()
        .args(["secret", "set", "EMPTY"])
        .write_stdin("\n")
        .assert()
        .failure()
        .stderr(predicate::str::contains("is empty"));
    env.cmd()
        .args(["secret", "set", "lower"])
        .write_stdin("x")
        .assert()
        .failure()
        .stderr(predicate::str::contains("[A-Z_][A-Z0-9_]*"));
    // No value on the command line: a second argument is a usage error.
    env.cmd()
        .args(["secret", "set", "NAME", "value"])
        .assert()
        .failure();
    assert_eq!(env.json(&["secret", "list", "--json"]), json!([]));
}

#[test]
fn a_wrong_key_gives_a_clear_error_naming_the_secret() {
    let env = Env::new();
    let key_a = env.write("a.key", &"11".repeat(32));
    let key_b = env.write("b.key", &"22".repeat(32));
    env.cmd()
        .args(["secret", "set", "TOKEN", "--secret-key-file"])
        .arg(&key_a)
        .write_stdin(VALUE)
        .assert()
        .success();
    // The key may also come as hex in the environment.
    env.cmd()
        .env("ASSAY_SECRET_KEY", "22".repeat(32))
        .args(["secret", "set", "OTHER"])
        .write_stdin("x")
        .assert()
        .success();
    env.cmd()
        .args(["secret", "check", "--secret-key-file"])
        .arg(&key_b)
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "cannot decrypt secret TOKEN: the key differs from the one it was written with",
        ));
    env.cmd()
        .args(["secret", "check", "--secret-key-file"])
        .arg(&key_a)
        .assert()
        .failure()
        .stderr(predicate::str::contains("cannot decrypt secret OTHER"));
    // Two keys at once: refused rather than one silently ignored.
    env.cmd()
        .env("ASSAY_SECRET_KEY", "22".repeat(32))
        .args(["secret", "check", "--secret-key-file"])
        .arg(&key_a)
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "both ASSAY_SECRET_KEY and a secret key file",
        ));
    // A key file that is not a key is refused, naming the file.
    let bad = env.write("bad.key", "not hex");
    env.cmd()
        .args(["secret", "set", "X", "--secret-key-file"])
        .arg(&bad)
        .write_stdin("x")
        .assert()
        .failure()
        .stderr(predicate::str::contains("bad.key"));
}

#[test]
fn grants_round_trip_extend_and_revoke() {
    let env = Env::new();
    env.cmd()
        .args(["plugin", "add", &plugin("echo")])
        .assert()
        .success();
    let grant = env.json(&[
        "plugin",
        "grant",
        "echo",
        "--host",
        "api.openai.com",
        "--max-requests",
        "4",
        "--json",
    ]);
    assert_eq!(grant["hosts"], json!(["api.openai.com"]));
    assert_eq!(grant["limits"]["maxRequests"], 4);
    // Another --host adds to the grant; limits given replace, others stay.
    let grant = env.json(&[
        "plugin",
        "grant",
        "echo",
        "--host",
        "127.0.0.1:8080",
        "--allow-http",
        "--timeout-ms",
        "5000",
        "--json",
    ]);
    assert_eq!(grant["hosts"], json!(["api.openai.com", "127.0.0.1:8080"]));
    assert_eq!(grant["allowHttp"], true);
    assert_eq!(grant["limits"]["maxRequests"], 4);
    assert_eq!(grant["limits"]["timeoutMs"], 5000);

    let info = env.json(&["plugin", "info", "echo", "--json"]);
    assert_eq!(info["networkGrant"], grant);
    env.cmd()
        .args(["plugin", "info", "echo"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "network:     api.openai.com, 127.0.0.1:8080",
        ));

    // Revoke one host, then all.
    env.cmd()
        .args(["plugin", "revoke", "echo", "--host", "127.0.0.1:8080"])
        .assert()
        .success();
    let info = env.json(&["plugin", "info", "echo", "--json"]);
    assert_eq!(info["networkGrant"]["hosts"], json!(["api.openai.com"]));
    env.cmd()
        .args(["plugin", "revoke", "echo", "--host", "other.com"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("host other.com is not granted"));
    env.cmd()
        .args(["plugin", "revoke", "echo"])
        .assert()
        .success();
    let info = env.json(&["plugin", "info", "echo", "--json"]);
    assert_eq!(info["networkGrant"], serde_json::Value::Null);

    // --replace starts over.
    env.json(&[
        "plugin",
        "grant",
        "echo",
        "--host",
        "a.example.com",
        "--json",
    ]);
    let grant = env.json(&[
        "plugin",
        "grant",
        "echo",
        "--replace",
        "--host",
        "b.example.com",
        "--json",
    ]);
    assert_eq!(grant["hosts"], json!(["b.example.com"]));

    // Hostile: a bad host names itself; an unknown plugin is an error.
    env.cmd()
        .args(["plugin", "grant", "echo", "--host", "http://evil/"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("http://evil/"));
    env.cmd()
        .args(["plugin", "grant", "nope", "--host", "a.com"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no plugin with id `nope`"));
}

#[test]
fn rate_limits_are_set_per_host_merged_and_checked() {
    let env = Env::new();
    env.cmd()
        .args(["plugin", "add", &plugin("echo")])
        .assert()
        .success();
    let grant = env.json(&[
        "plugin",
        "grant",
        "echo",
        "--host",
        "api.openai.com",
        "--requests-per-second",
        "api.openai.com=2.5",
        "--json",
    ]);
    assert_eq!(
        grant["rateLimits"],
        json!([{"host": "api.openai.com", "requestsPerSecond": 2.5}])
    );
    // A second flag for the same host adds to its limit, not a new one.
    let grant = env.json(&[
        "plugin",
        "grant",
        "echo",
        "--tokens-per-minute",
        "api.openai.com=90000",
        "--json",
    ]);
    assert_eq!(
        grant["rateLimits"],
        json!([{"host": "api.openai.com", "requestsPerSecond": 2.5, "tokensPerMinute": 90000}])
    );
    env.cmd()
        .args(["plugin", "info", "echo"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "api.openai.com at most 2.5 requests/s and 90000 tokens/min",
        ));
    for (bad, says) in [
        ("api.openai.com=0", "not a rate"),
        ("api.openai.com=fast", "not a number"),
        ("api.openai.com", "HOST=N"),
        ("http://x/=5", "not a URL"),
    ] {
        env.cmd()
            .args(["plugin", "grant", "echo", "--requests-per-second", bad])
            .assert()
            .failure()
            .stderr(predicate::str::contains(says));
    }
    env.cmd()
        .args([
            "plugin",
            "grant",
            "echo",
            "--tokens-per-minute",
            "api.openai.com=0",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("above 0"));
    // Revoking the host takes its rate limit with it.
    env.cmd()
        .args(["plugin", "grant", "echo", "--host", "b.example.com"])
        .assert()
        .success();
    env.cmd()
        .args(["plugin", "revoke", "echo", "--host", "api.openai.com"])
        .assert()
        .success();
    let info = env.json(&["plugin", "info", "echo", "--json"]);
    assert!(info["networkGrant"].get("rateLimits").is_none(), "{info}");
}

#[test]
fn allow_host_is_a_one_off_grant_kept_with_the_run_only() {
    let env = Env::new();
    let report = env.json(&[
        "run",
        "-d",
        &common::example("capitals.jsonl"),
        "-t",
        &plugin("echo"),
        "-s",
        &plugin("exact-match"),
        "--allow-host",
        "127.0.0.1:8080",
        "--allow-host",
        "api.example.com",
        "--json",
    ]);
    assert_eq!(report["status"], "completed");
    let run_id = report["runId"].as_str().unwrap();
    let shown = env.json(&["runs", "show", run_id, "--json"]);
    let network = &shown["run"]["config"]["options"]["network"];
    for id in ["echo", "exact-match"] {
        assert_eq!(
            network[id]["hosts"],
            json!(["127.0.0.1:8080", "api.example.com"]),
            "{shown}"
        );
    }
    // Nothing stored as a grant.
    let info = env.json(&["plugin", "info", "echo", "--json"]);
    assert_eq!(info["networkGrant"], serde_json::Value::Null);
    // A bad host names itself and runs nothing.
    env.cmd()
        .args([
            "run",
            "-d",
            &common::example("capitals.jsonl"),
            "-t",
            &plugin("echo"),
        ])
        .args(["--allow-host", "https://x.com/path"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("https://x.com/path"));
}
