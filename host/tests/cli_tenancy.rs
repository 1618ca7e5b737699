//! The operator's commands: `assay tenant ...`, `assay key ...`, `assay
//! plugin add --shared`, and the notice `assay run` prints when it clamps a
//! run option to a tenant limit.

mod common;

use common::{Env, example, plugin};
use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;

#[test]
fn tenants_are_created_listed_and_their_limits_edited() {
    let env = Env::new();
    let created = env.json(&[
        "tenant",
        "create",
        "team-a",
        "--set",
        "queued-runs=5",
        "--json",
    ]);
    assert_eq!(created["id"], "team-a");
    assert_eq!(created["limits"]["queuedRuns"], 5);
    env.cmd()
        .args(["tenant", "create", "team-a"])
        .assert()
        .failure()
        .stderr(contains("already exists"));
    env.cmd()
        .args(["tenant", "create", "bad name"])
        .assert()
        .failure()
        .stderr(contains("invalid tenant name"));
    let listed = env.json(&["tenant", "list", "--json"]);
    let ids: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["default", "team-a"]);

    let limits = env.json(&[
        "tenant",
        "limits",
        "team-a",
        "--set",
        "items-in-flight=500",
        "--set",
        "stored-bytes=2G",
        "--json",
    ]);
    assert_eq!(limits["limits"]["itemsInFlight"], 500);
    assert_eq!(limits["limits"]["storedBytes"], 2i64 << 30);
    assert_eq!(limits["limits"]["queuedRuns"], 5, "other limits unchanged");
    // An unknown key names the valid ones, and changes nothing.
    env.cmd()
        .args(["tenant", "limits", "team-a", "--set", "items=3"])
        .assert()
        .code(2)
        .stderr(contains("unknown limit `items`"))
        .stderr(contains("items-in-flight"))
        .stderr(contains("plugin-bytes"));
    let again = env.json(&["tenant", "limits", "team-a", "--json"]);
    assert_eq!(again["limits"], limits["limits"]);
    // The fair-share weight is set with the limits, 1 to 1000.
    assert_eq!(again["limits"]["weight"], 1, "default weight");
    let weighted = env.json(&["tenant", "limits", "team-a", "--set", "weight=3", "--json"]);
    assert_eq!(weighted["limits"]["weight"], 3);
    env.cmd()
        .args(["tenant", "limits", "team-a", "--set", "weight=1001"])
        .assert()
        .code(2)
        .stderr(contains("between 1 and 1000"));
    let again = env.json(&["tenant", "limits", "team-a", "--json"]);
    assert_eq!(
        again["limits"]["weight"], 3,
        "a refused weight changes nothing"
    );
    env.cmd()
        .args(["tenant", "limits", "nobody"])
        .assert()
        .failure()
        .stderr(contains("no tenant `nobody`"));
}

#[test]
fn keys_are_shown_once_listed_by_prefix_and_revoked() {
    let env = Env::new();
    env.cmd()
        .args(["tenant", "create", "team-a"])
        .assert()
        .success();
    let created = env.json(&[
        "key", "create", "--tenant", "team-a", "--role", "viewer", "--name", "dash", "--json",
    ]);
    let token = created["token"].as_str().unwrap();
    assert!(
        token.starts_with("assay_") && token.len() >= 6 + 32,
        "{token}"
    );
    assert_eq!(created["key"]["role"], "viewer");
    // Plain output: the token alone on stdout (for scripts).
    let plain = env
        .cmd()
        .args(["key", "create", "--tenant", "team-a"])
        .assert()
        .success();
    let plain = String::from_utf8_lossy(&plain.get_output().stdout).to_string();
    assert!(plain.trim().starts_with("assay_") && !plain.trim().contains(' '));

    let listed = env.json(&["key", "list", "--tenant", "team-a", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let text = env.cmd().args(["key", "list"]).assert().success();
    let text = String::from_utf8_lossy(&text.get_output().stdout).to_string();
    assert!(text.contains(&token[..14]), "listed by prefix: {text}");
    assert!(!text.contains(token), "never the token: {text}");
    assert!(!text.contains(plain.trim()));

    let id = created["key"]["id"].as_str().unwrap();
    env.cmd()
        .args(["key", "revoke", id])
        .assert()
        .success()
        .stdout(contains("Revoked"));
    let listed = env.json(&["key", "list", "--json"]);
    let revoked = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id)
        .unwrap();
    assert!(revoked["revokedAt"].is_string());
    env.cmd()
        .args(["key", "create", "--tenant", "nobody"])
        .assert()
        .failure()
        .stderr(contains("no tenant `nobody`"));
    env.cmd()
        .args(["key", "create", "--tenant", "team-a", "--role", "root"])
        .assert()
        .code(2);
    env.cmd()
        .args(["key", "create"])
        .assert()
        .code(2)
        .stderr(contains("--tenant"));
}

#[test]
fn a_concurrency_above_the_tenant_limit_is_clamped_with_a_notice() {
    let env = Env::new();
    env.cmd()
        .args(["tenant", "limits", "default", "--set", "items-in-flight=4"])
        .assert()
        .success();
    env.cmd()
        .args([
            "run",
            "-d",
            &example("capitals.jsonl"),
            "-t",
            &plugin("echo"),
            "--concurrency",
            "256",
        ])
        .assert()
        .success()
        .stderr(contains("items-in-flight"))
        .stderr(contains("(4)"))
        .stderr(contains("concurrency 4"));
    let runs = env.json(&["runs", "list", "--json"]);
    let config = &runs[0]["config"]["options"];
    assert_eq!(config["maxConcurrency"], 4, "{runs}");

    // Without --concurrency the default fits the limit, without a notice.
    env.cmd()
        .args([
            "run",
            "-d",
            &example("capitals.jsonl"),
            "-t",
            &plugin("echo"),
        ])
        .assert()
        .success()
        .stderr(contains("items-in-flight").not())
        .stderr(contains("concurrency 4"));
}

#[test]
fn shared_plugins_are_listed_as_shared() {
    let env = Env::new();
    env.cmd()
        .args(["plugin", "add", "--shared", &plugin("echo")])
        .assert()
        .success();
    let table = env.cmd().args(["plugin", "list"]).assert().success();
    let table = String::from_utf8_lossy(&table.get_output().stdout).to_string();
    assert!(table.contains("shared"), "{table}");
    // A run names it by id; registering the same file again reuses it.
    env.cmd()
        .args(["run", "-d", &example("capitals.jsonl"), "-t", "echo", "-q"])
        .assert()
        .success();
    env.cmd()
        .args([
            "run",
            "-d",
            &example("capitals.jsonl"),
            "-t",
            &plugin("echo"),
            "-q",
        ])
        .assert()
        .success();
    let listed = env.json(&["plugin", "list", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
}
