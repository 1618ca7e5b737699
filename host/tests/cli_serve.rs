//! `assay serve` and the CLI on one database: a run started by either is
//! visible to the other.

mod common;

use common::processes::{Http, Server};
use common::{Env, example, plugin};
use serde_json::{Value, json};

fn scorer_mean(report: &Value, id: &str) -> Value {
    report["scorers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["scorerId"] == id)
        .unwrap_or_else(|| panic!("no scorer {id} in {report}"))["mean"]
        .clone()
}

#[test]
fn runs_started_by_the_cli_and_the_server_are_visible_to_both() {
    let env = Env::new();
    // Plugins registered by the CLI are the server's too.
    env.cmd()
        .args(["plugin", "add", &plugin("echo"), &plugin("exact-match")])
        .assert()
        .success();
    let server = Server::start(&env);
    let key = env.json(&["key", "create", "--tenant", "default", "--json"]);
    let http = Http::new(key["token"].as_str().unwrap());

    // CLI run → visible through the API.
    let report = env.json(&[
        "run",
        "-d",
        &example("capitals.jsonl"),
        "-t",
        "echo",
        "-s",
        "exact-match",
        "--json",
        "-q",
    ]);
    let dataset = report["datasetId"].as_str().unwrap();
    let run = report["runId"].as_str().unwrap();
    let api_run = http.get(&format!("{}/api/datasets/{dataset}/runs/{run}", server.url));
    assert_eq!(api_run["status"], "completed", "{api_run}");
    assert_eq!(api_run["succeededCount"], report["succeededCount"]);

    // API-triggered run → executed by the server, followed by the CLI.
    let (status, triggered) = http.post(
        &format!("{}/api/datasets/{dataset}/runs", server.url),
        &json!({"targetType": "plugin", "targetId": "echo", "scorerIds": ["exact-match"]}),
    );
    assert_eq!(status, 202, "{triggered}");
    let api_run_id = triggered["runId"].as_str().unwrap();
    let watched = env.json(&["runs", "watch", api_run_id, "--json", "-q"]);
    assert_eq!(watched["status"], "completed");
    assert_eq!(
        scorer_mean(&watched, "exact-match"),
        scorer_mean(&report, "exact-match"),
        "same dataset, same plugins, same scores"
    );
    let listed = env.json(&["runs", "list", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 2);

    // A key revoked with the CLI stops working on the running server.
    let key_id = key["key"]["id"].as_str().unwrap();
    env.cmd().args(["key", "revoke", key_id]).assert().success();
    let (status, body) = http.get_status(&format!("{}/api/datasets", server.url));
    assert_eq!(status, 401, "{body}");

    // Ctrl-C stops the server gracefully.
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn serve_without_auth_is_refused_off_loopback() {
    let env = Env::new();
    let out = env
        .cmd()
        .args(["serve", "--no-auth", "--addr", "0.0.0.0:0"])
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains("--no-auth") && stderr.contains("loopback"),
        "{stderr}"
    );
    // The help states the security model.
    let help = env.cmd().args(["serve", "--help"]).assert().success();
    let help = String::from_utf8_lossy(&help.get_output().stdout).to_string();
    for needle in [
        "Security model",
        "401",
        "403",
        "404",
        "--no-auth",
        "--max-item-timeout",
    ] {
        assert!(help.contains(needle), "`assay serve --help` lacks {needle}");
    }
}

#[test]
fn idle_connections_past_the_open_file_limit_do_not_stop_health() {
    use std::time::{Duration, Instant};
    let env = Env::new();
    // The server may open 1024 files (soft and hard limit), a common
    // default; its clients hold five times as many idle connections.
    let assay = env.std_cmd();
    let mut cmd = std::process::Command::new("sh");
    for (k, v) in assay.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.arg("-c")
        .arg("ulimit -n 1024 && exec \"$0\" \"$@\"")
        .arg(assay.get_program())
        .args([
            "serve",
            "--no-auth",
            "--addr",
            "127.0.0.1:0",
            "--grace",
            "2s",
        ]);
    let server = Server::spawn(cmd);
    let hard = rlimit::increase_nofile_limit(u64::MAX).expect("raise the open-file limit");
    let want = 5000.min(hard.saturating_sub(512) as usize);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let addr = server.url.trim_start_matches("http://").to_string();
    rt.block_on(async {
        let mut held = Vec::new();
        while held.len() < want {
            let batch = (0..100).map(|_| {
                tokio::time::timeout(
                    Duration::from_secs(2),
                    tokio::net::TcpStream::connect(addr.as_str()),
                )
            });
            let before = held.len();
            for r in futures::future::join_all(batch).await {
                if let Ok(Ok(s)) = r {
                    held.push(s);
                }
            }
            assert!(
                held.len() > before,
                "the server stopped accepting connections after {before}"
            );
        }
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let mut took = Vec::new();
        for _ in 0..100 {
            let t = Instant::now();
            let r = tokio::time::timeout(
                Duration::from_secs(5),
                client.get(format!("{}/health", server.url)).send(),
            )
            .await
            .expect("/health answers")
            .unwrap();
            assert_eq!(r.status(), 200);
            took.push(t.elapsed());
        }
        took.sort();
        // Printed for BENCHMARKS.md (`-- --nocapture`).
        println!(
            "server limited to 1024 open files; {} idle connections held; /health n=100 p50={:?} p99={:?} max={:?}",
            held.len(),
            took[49],
            took[98],
            took[99]
        );
        assert!(
            took[98] < Duration::from_millis(100),
            "/health p99 with {} idle connections: {:?}",
            held.len(),
            took
        );
        drop(held);
    });
    assert_eq!(server.stop(), Some(0));
}
