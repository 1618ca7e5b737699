//! `assay runs rescore` and `assay runs rerun` through the real binary: a
//! run of the shipped `openai-chat` target against a loopback stub that
//! counts requests, then re-scored with another scorer. The stub proves the
//! target is not called again; the results prove the outputs are the
//! parent's. A rerun reproduces a run's configuration; `runs show` says
//! what produced the numbers.

mod common;

use assay_openai_stub::{BackgroundStub, StubConfig};
use common::{Env, plugin, scorer};
use serde_json::Value;

/// A finished run of three questions through `openai-chat` (the stub
/// echoes the prompt), scored by `exact-match`; returns its report.
fn parent_run(env: &Env, stub: &BackgroundStub) -> Value {
    let file = env.write(
        "questions.jsonl",
        r#"{"input": {"q": "Paris"}, "expectedOutput": "Paris"}
{"input": {"q": "Rome"}, "expectedOutput": "Roma"}
{"input": {"q": "Oslo"}, "expectedOutput": "Oslo"}"#,
    );
    let target_config = format!(
        r#"{{"model": "stub-model", "baseUrl": "{}/v1", "prompt": "{{{{input.q}}}}"}}"#,
        stub.url()
    );
    let host = stub.addr().to_string();
    env.json(&[
        "run",
        "-d",
        file.to_str().unwrap(),
        "-t",
        &plugin("openai-chat"),
        "--target-config",
        &target_config,
        "--allow-host",
        &host,
        "-s",
        &plugin("exact-match"),
        "--json",
        "-q",
    ])
}

fn results(env: &Env, run_id: &str) -> Vec<Value> {
    let out = env
        .cmd()
        .args(["runs", "results", run_id, "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn rescore_grades_stored_outputs_without_calling_the_target() {
    let env = Env::new();
    let stub = BackgroundStub::start(StubConfig::default()).unwrap();
    let parent = parent_run(&env, &stub);
    assert_eq!(parent["succeededCount"], 3, "{parent}");
    let parent_id = parent["runId"].as_str().unwrap().to_string();
    let calls = stub.stats().requests;
    assert_eq!(calls, 3);
    // What produced the numbers: the model the server reported, per item.
    let shown = env.json(&["runs", "show", &parent_id, "--json"]);
    assert_eq!(
        shown["models"],
        serde_json::json!([{"model": "stub-model", "items": 3}]),
        "{shown}"
    );
    // The target may even be gone: a re-scoring run never loads it.
    env.cmd()
        .args(["plugin", "remove", "openai-chat"])
        .assert()
        .success();

    let report = env.json(&[
        "runs",
        "rescore",
        &parent_id[..8],
        "-s",
        &plugin("levenshtein"),
        "-s",
        "exact-match",
        "--json",
        "-q",
    ]);
    assert_eq!(stub.stats().requests, calls, "the target was called again");
    assert_eq!(report["status"], "completed", "{report}");
    assert_eq!(report["succeededCount"], 3, "{report}");
    let child_id = report["runId"].as_str().unwrap().to_string();
    assert_ne!(child_id, parent_id);
    // Rome vs Roma: exact match fails, Levenshtein gives 3/4.
    let exact = scorer(&report, "exact-match");
    assert!(
        (exact["mean"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9,
        "{report}"
    );
    let lev = scorer(&report, "levenshtein");
    assert!(
        (lev["mean"].as_f64().unwrap() - (1.0 + 0.75 + 1.0) / 3.0).abs() < 1e-9,
        "{report}"
    );

    let shown = env.json(&["runs", "show", &child_id, "--json"]);
    assert_eq!(shown["run"]["parentRunId"], parent_id.as_str(), "{shown}");
    assert_eq!(shown["run"]["targetId"], "openai-chat");
    let text = env.stdout(&["runs", "show", &child_id]);
    assert!(
        text.contains(&format!("rescores  run {parent_id}")),
        "{text}"
    );
    assert!(text.contains("models    stub-model (3 items)"), "{text}");
    assert!(
        text.contains(&format!("rerun     assay runs rerun {child_id}")),
        "{text}"
    );

    // Rerunning the re-scoring run re-scores the same parent, still
    // without calling the target.
    let again = env.json(&["runs", "rerun", &child_id, "--json", "-q"]);
    assert_eq!(stub.stats().requests, calls);
    let again_id = again["runId"].as_str().unwrap();
    let shown_again = env.json(&["runs", "show", again_id, "--json"]);
    assert_eq!(shown_again["run"]["parentRunId"], parent_id.as_str());
    assert_eq!(shown_again["run"]["scorerIds"], shown["run"]["scorerIds"]);
    assert_eq!(shown_again["run"]["config"], shown["run"]["config"]);

    let before = results(&env, &parent_id);
    let after = results(&env, &child_id);
    assert_eq!(before.len(), 3);
    assert_eq!(after.len(), 3);
    for (a, b) in before.iter().zip(&after) {
        assert_eq!(a["itemId"], b["itemId"]);
        assert_eq!(a["output"], b["output"]);
        assert_eq!(a["targetMetadata"], b["targetMetadata"]);
        let ids: Vec<&str> = b["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["scorerId"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 2, "{b}");
        assert!(ids.contains(&"levenshtein") && ids.contains(&"exact-match"));
    }

    // The two runs compare like any two runs of the dataset.
    let compared = env.json(&["runs", "compare", &parent_id, &child_id, "--json"]);
    assert_eq!(
        compared["scorers"]["exact-match"]["delta"], 0.0,
        "{compared}"
    );
}

#[test]
fn rescore_refuses_what_it_cannot_do_and_says_why() {
    let env = Env::new();
    let stub = BackgroundStub::start(StubConfig::default()).unwrap();
    let parent = parent_run(&env, &stub);
    let parent_id = parent["runId"].as_str().unwrap();

    // No scorer: a usage error.
    env.cmd()
        .args(["runs", "rescore", parent_id])
        .assert()
        .code(2);
    // A target is not a scorer.
    let out = env
        .cmd()
        .args(["runs", "rescore", parent_id, "-s", &plugin("echo")])
        .assert()
        .failure()
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a scorer"), "{err}");
    // A config for a scorer that is not the run's.
    let out = env
        .cmd()
        .args([
            "runs",
            "rescore",
            parent_id,
            "-s",
            "exact-match",
            "--scorer-config",
            "levenshtein:x=1",
        ])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a scorer of this run"), "{err}");
    // An unknown run.
    let out = env
        .cmd()
        .args(["runs", "rescore", "ffffffff", "-s", "exact-match"])
        .assert()
        .failure()
        .get_output()
        .clone();
    assert!(String::from_utf8_lossy(&out.stderr).contains("ffffffff"));
    // Nothing was created by the refusals.
    let runs = env.json(&["runs", "list", "--json"]);
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");
}

#[test]
fn rerun_reproduces_the_configuration() {
    let env = Env::new();
    let file = env.write(
        "capitals.jsonl",
        r#"{"input": {"city": "Paris"}, "expectedOutput": "City: PARIS"}
{"input": {"city": "Rome"}, "expectedOutput": "City: Rome"}"#,
    );
    let first = env.json(&[
        "run",
        "-d",
        file.to_str().unwrap(),
        "-t",
        &plugin("template"),
        "--target-config",
        r#"{"template": "City: {{input.city}}"}"#,
        "-s",
        &plugin("exact-match"),
        "--scorer-config",
        "exact-match:ignoreCase=true",
        "-j",
        "3",
        "--retries",
        "2",
        "--item-timeout",
        "20s",
        "--json",
        "-q",
    ]);
    let first_id = first["runId"].as_str().unwrap().to_string();
    // The dataset moves on; the rerun stays on the version the run pinned.
    let more = env.write("more.jsonl", r#"{"input": {"city": "Oslo"}}"#);
    env.cmd()
        .args([
            "dataset",
            "import",
            more.to_str().unwrap(),
            "--into",
            "capitals",
        ])
        .assert()
        .success();

    let second = env.json(&["runs", "rerun", &first_id, "--json", "-q"]);
    let second_id = second["runId"].as_str().unwrap().to_string();
    assert_ne!(first_id, second_id);
    let a = env.json(&["runs", "show", &first_id, "--json"]);
    let b = env.json(&["runs", "show", &second_id, "--json"]);
    for field in [
        "datasetId",
        "datasetVersion",
        "targetType",
        "targetId",
        "scorerIds",
        "totalItems",
        "config",
    ] {
        assert_eq!(a["run"][field], b["run"][field], "{field}: {a} vs {b}");
    }
    let options = &b["run"]["config"]["options"];
    assert_eq!(options["maxConcurrency"], 3, "{b}");
    assert_eq!(options["maxRetries"], 2);
    assert_eq!(options["itemTimeout"], 20_000);
    assert_eq!(options["targetConfig"]["template"], "City: {{input.city}}");
    assert_eq!(options["scorerConfigs"]["exact-match"]["ignoreCase"], true);
    assert_eq!(b["run"]["totalItems"], 2);
    // Same configuration, same numbers (ignoreCase makes PARIS match).
    assert_eq!(scorer(&first, "exact-match")["mean"], 1.0, "{first}");
    assert_eq!(scorer(&second, "exact-match")["mean"], 1.0, "{second}");
    assert_eq!(b["run"]["parentRunId"], Value::Null);
    assert_eq!(b["models"], serde_json::json!([]));

    // A gate on a scorer the run does not use would never be checked: it is
    // refused before anything runs, naming the run's scorers.
    let runs_before = env.json(&["runs", "list", "--json"]);
    let out = env
        .cmd()
        .args(["runs", "rerun", &first_id, "--fail-under", "exact-mach=0.9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("exact-mach") && stderr.contains("exact-match"),
        "{stderr}"
    );
    assert_eq!(env.json(&["runs", "list", "--json"]), runs_before);
}
