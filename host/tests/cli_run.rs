//! `assay run` driven through the real binary: summaries, JSON, output
//! files, dataset files (good and bad), plugin files (missing, invalid),
//! quality gates and Ctrl-C.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{Env, example, example_items, plugin, scorer};
use predicates::prelude::*;
use serde_json::Value;

/// Items of capitals.jsonl whose input equals the expected output: what the
/// echo target + exact-match scorer must count as passes.
fn exact_matches() -> (usize, usize) {
    let items = example_items("capitals.jsonl");
    let matches = items
        .iter()
        .filter(|i| i["input"] == i["expectedOutput"])
        .count();
    (matches, items.len())
}

#[test]
fn run_over_a_jsonl_file_reports_scores_and_writes_one_line_per_item() {
    let env = Env::new();
    let out = env.path("results.jsonl");
    let report = env.json(&[
        "run",
        "--dataset",
        &example("capitals.jsonl"),
        "--target",
        &plugin("echo"),
        "--scorer",
        &plugin("exact-match"),
        "--output",
        out.to_str().unwrap(),
        "--json",
    ]);
    let (matches, total) = exact_matches();
    assert_eq!(report["status"], "completed");
    assert_eq!(report["totalItems"], total);
    assert_eq!(report["succeededCount"], total);
    assert_eq!(report["failedCount"], 0);
    let exact = scorer(&report, "exact-match");
    assert_eq!(exact["passCount"], matches);
    assert_eq!(exact["scoredCount"], total);
    let mean = exact["mean"].as_f64().unwrap();
    assert!(
        (mean - matches as f64 / total as f64).abs() < 1e-9,
        "{report}"
    );
    assert!(report["latencyMs"]["p50"].as_f64().unwrap() > 0.0);
    assert!(
        report["latencyMs"]["p95"].as_f64().unwrap()
            >= report["latencyMs"]["p50"].as_f64().unwrap()
    );

    // --output: one JSON line per item, all of this run, every index once.
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("output line is JSON"))
        .collect();
    assert_eq!(lines.len(), total);
    let indexes: BTreeSet<i64> = lines.iter().map(|l| l["index"].as_i64().unwrap()).collect();
    assert_eq!(indexes, (0..total as i64).collect());
    assert!(lines.iter().all(|l| l["runId"] == report["runId"]));
    assert!(lines.iter().all(|l| l["output"] == l["input"]));

    // The run is stored: `runs show` reports the same numbers.
    let run_id = report["runId"].as_str().unwrap();
    let shown = env.json(&["runs", "show", run_id, "--json"]);
    assert_eq!(shown["status"], "completed");
    assert_eq!(scorer(&shown, "exact-match")["passCount"], matches);
}

#[test]
fn the_text_summary_shows_a_table_and_the_csv_twin_reuses_the_dataset() {
    let env = Env::new();
    let first = env.json(&[
        "run",
        "-d",
        &example("capitals.jsonl"),
        "-t",
        &plugin("echo"),
        "-s",
        &plugin("exact-match"),
        "--json",
        "-q",
    ]);
    let (matches, total) = exact_matches();
    let assert = env
        .cmd()
        .args([
            "run",
            "-d",
            &example("capitals.csv"),
            "-t",
            "echo",
            "-s",
            "exact-match",
        ])
        .assert()
        .success()
        .stderr(predicate::str::contains("Using dataset capitals"));
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert!(stdout.contains("SCORER"), "{stdout}");
    assert!(
        stdout.contains(&format!("{:.3}", matches as f64 / total as f64)),
        "{stdout}"
    );
    assert!(stdout.contains("p50"), "{stdout}");

    // Same content: same dataset, same version, so the runs are comparable.
    let runs = env.json(&["runs", "list", "--json"]);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| r["datasetId"] == first["datasetId"]));
    assert!(
        runs.iter()
            .all(|r| r["datasetVersion"] == first["datasetVersion"])
    );
    // The CSV's extra column became the items' context.
    let items = env
        .cmd()
        .args(["dataset", "items", "capitals", "--json", "--limit", "100"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let items: Vec<Value> = String::from_utf8_lossy(&items)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(items.len(), total);
    assert!(items.iter().all(|i| i["context"]["country"].is_string()));
}

#[test]
fn a_bad_jsonl_line_is_named_and_nothing_is_imported() {
    let env = Env::new();
    let file = env.write(
        "bad.jsonl",
        "{\"input\": \"a\", \"expectedOutput\": \"a\"}\n{\"input\": \"b\"}\n{\"input\": \"c\", \"expectedOutput\": \n",
    );
    env.cmd()
        .args(["run", "-d", file.to_str().unwrap(), "-t", &plugin("echo")])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("line 3"))
        .stderr(predicate::str::contains("invalid JSON"));
    assert_eq!(
        env.json(&["dataset", "list", "--json"]),
        serde_json::json!([])
    );
    assert_eq!(env.json(&["runs", "list", "--json"]), serde_json::json!([]));
}

#[test]
fn a_bad_csv_row_is_named_and_nothing_is_imported() {
    let env = Env::new();
    let file = env.write("bad.csv", "input,expectedOutput\na,a\nb,b,extra\n,c\n");
    env.cmd()
        .args(["dataset", "import", file.to_str().unwrap()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "line 3: has 3 fields but the header has 2",
        ))
        .stderr(predicate::str::contains(
            "line 4: the `input` cell is empty",
        ));
    assert_eq!(
        env.json(&["dataset", "list", "--json"]),
        serde_json::json!([])
    );

    let no_input = env.write("noinput.csv", "question,answer\na,b\n");
    env.cmd()
        .args(["dataset", "import", no_input.to_str().unwrap()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no `input` column"));
}

#[test]
fn a_missing_plugin_file_names_the_build_step() {
    let env = Env::new();
    let missing = env.path("nope.wasm");
    env.cmd()
        .args([
            "run",
            "-d",
            &example("capitals.jsonl"),
            "-t",
            missing.to_str().unwrap(),
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("does not exist"))
        .stderr(predicate::str::contains("rustup target add wasm32-wasip2"));
    // Nothing was written for a run that could not start.
    assert_eq!(
        env.json(&["dataset", "list", "--json"]),
        serde_json::json!([])
    );
}

#[test]
fn an_invalid_plugin_file_is_a_clear_error() {
    let env = Env::new();
    let garbage = env.write("garbage.wasm", "this is not wasm at all, just bytes");
    env.cmd()
        .args([
            "run",
            "-d",
            &example("capitals.jsonl"),
            "-t",
            &plugin("echo"),
            "-s",
            garbage.to_str().unwrap(),
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not a usable assay plugin"))
        .stderr(predicate::str::contains("WebAssembly"));
    // An unknown id says how to register it.
    env.cmd()
        .args([
            "run",
            "-d",
            &example("capitals.jsonl"),
            "-t",
            "no-such-target",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("unknown plugin `no-such-target`"))
        .stderr(predicate::str::contains("assay plugin add"));
}

#[test]
fn fail_under_sets_exit_code_3_only_when_a_mean_is_below_its_minimum() {
    let env = Env::new();
    let (matches, total) = exact_matches();
    let mean = matches as f64 / total as f64;
    assert!(mean < 0.9, "the example must not pass a 0.9 gate");
    let base = [
        "run".to_string(),
        "-d".into(),
        example("capitals.jsonl"),
        "-t".into(),
        plugin("echo"),
        "-s".into(),
        plugin("exact-match"),
        "-q".into(),
    ];
    env.cmd()
        .args(&base)
        .args(["--fail-under", "exact-match=0.9"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("fail-under"));
    env.cmd()
        .args(&base)
        .args(["--fail-under", &format!("exact-match={mean}")])
        .assert()
        .code(0);
    // A bare minimum applies to every scorer.
    env.cmd()
        .args(&base)
        .args(["--fail-under", "0.1", "--json"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("\"passed\": true"));
    // A gate on a scorer the run does not have is a usage error.
    env.cmd()
        .args(&base)
        .args(["--fail-under", "contains=0.5"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a scorer of this run"));
}

#[test]
fn failed_items_are_grouped_and_gate_with_fail_on_errors() {
    let env = Env::new();
    let file = env.write(
        "mixed.jsonl",
        &[
            r#"{"input": {"mode": "fail"}}"#,
            r#"{"input": {"mode": "echo", "n": 1}}"#,
            r#"{"input": {"mode": "fail"}, "note": "second"}"#,
        ]
        .join("\n"),
    );
    let args = [
        "run",
        "-d",
        file.to_str().unwrap(),
        "-t",
        &plugin("hostile-target"),
        "-q",
        "--json",
    ];
    let out = env
        .cmd()
        .args(args)
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let report: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(report["failedCount"], 2);
    assert_eq!(report["succeededCount"], 1);
    let failures = report["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{report}");
    assert_eq!(failures[0]["count"], 2);
    assert_eq!(failures[0]["source"], "target");
    assert!(
        failures[0]["message"]
            .as_str()
            .unwrap()
            .contains("hostile failure")
    );
    env.cmd()
        .args(args)
        .arg("--fail-on-errors")
        .assert()
        .code(4);
}

/// A plugin's error message with terminal escape sequences (colour, window
/// title, a hyperlink) is printed with the escapes shown, not executed.
#[test]
fn escape_sequences_from_plugins_are_shown_not_sent_to_the_terminal() {
    let env = Env::new();
    let message = r"\u001b[31mred\u001b]0;pwned\u0007\u001b]8;;http://evil\u0007link";
    let file = env.write(
        "escapes.jsonl",
        &format!(
            "{{\"input\": {{\"mode\": \"fail-with\", \"message\": \"{message}\"}}}}\n{}",
            r#"{"input": {"mode": "echo"}}"#
        ),
    );
    let out = env
        .cmd()
        .args([
            "run",
            "-d",
            file.to_str().unwrap(),
            "-t",
            &plugin("hostile-target"),
        ])
        .assert()
        .code(0)
        .get_output()
        .clone();
    for stream in [&out.stdout, &out.stderr] {
        assert!(
            !stream.iter().any(|b| *b == 0x1b || *b == 0x07),
            "raw control bytes reached the terminal: {}",
            String::from_utf8_lossy(stream)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(r"\x1b[31mred\x1b]0;pwned\x07"),
        "the message is shown with visible escapes: {text}"
    );
}

/// `--log-format json`: every stderr line is a JSON object, and a run's
/// lines carry its run id and tenant.
#[test]
fn json_logs_carry_the_run_and_tenant() {
    let env = Env::new();
    let file = env.write(
        "logs.jsonl",
        r#"{"input": "a", "expectedOutput": "a"}
{"input": "b", "expectedOutput": "b"}"#,
    );
    let out = env
        .cmd()
        .env("ASSAY_LOG", "assay_runner=debug")
        .args(["--log-format", "json", "run", "-d", file.to_str().unwrap()])
        .args([
            "-t",
            &plugin("echo"),
            "-s",
            &plugin("exact-match"),
            "--json",
            "-q",
        ])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let run_id = report["runId"].as_str().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let started = lines
        .iter()
        .find(|l| l["fields"]["message"] == "run started")
        .unwrap_or_else(|| panic!("no `run started` line in {stderr}"));
    assert_eq!(started["level"], "INFO");
    assert_eq!(started["span"]["run_id"], run_id, "{started}");
    assert_eq!(started["span"]["tenant"], "default", "{started}");
}

#[test]
fn ctrl_c_cancels_the_run_keeps_results_and_exits_130() {
    let env = Env::new();
    let total = 30;
    let lines: Vec<String> = (0..total)
        .map(|i| format!("{{\"input\": {{\"n\": {i}}}, \"expectedOutput\": {{\"n\": {i}}}}}"))
        .collect();
    let file = env.write("slow.jsonl", &lines.join("\n"));
    let out = env.path("partial.jsonl");
    let mut child = env
        .std_cmd()
        .args([
            "run",
            "-d",
            file.to_str().unwrap(),
            "-t",
            &plugin("hostile-target"),
            "--target-config",
            r#"{"mode":"sleep","ms":300}"#,
            "-s",
            &plugin("exact-match"),
            "--concurrency",
            "2",
            "--output",
            out.to_str().unwrap(),
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    // Wait until a few items have finished (the output file is written as
    // they do), then press Ctrl-C.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = std::fs::read_to_string(&out)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if done >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "no item finished within 60 s");
        assert!(child.try_wait().unwrap().is_none(), "assay exited early");
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "stderr: {stderr}");
    assert!(stderr.contains("Cancelling"), "{stderr}");

    let report: Value = serde_json::from_slice(&output.stdout).expect("summary JSON on stdout");
    assert_eq!(report["status"], "cancelled");
    let run_id = report["runId"].as_str().unwrap();
    let shown = env.json(&["runs", "show", run_id, "--json"]);
    assert_eq!(shown["status"], "cancelled");
    let finished =
        shown["succeededCount"].as_i64().unwrap() + shown["failedCount"].as_i64().unwrap();
    assert!(
        finished >= 2 && finished < total,
        "finished {finished} of {total}"
    );
    assert_eq!(
        shown["skippedCount"].as_i64().unwrap(),
        total - finished,
        "counts add up"
    );
    // Results so far are kept, and match what was written to --output.
    let results = env
        .cmd()
        .args(["runs", "results", run_id, "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let stored = String::from_utf8_lossy(&results).lines().count() as i64;
    assert_eq!(stored, finished);
    let written = std::fs::read_to_string(&out).unwrap().lines().count() as i64;
    assert_eq!(written, finished);
}

#[test]
fn a_run_whose_process_died_is_resumed_without_repeating_items() {
    let env = Env::new();
    let total = 30;
    let lines: Vec<String> = (0..total)
        .map(|i| format!("{{\"input\": {{\"n\": {i}}}, \"expectedOutput\": {{\"n\": {i}}}}}"))
        .collect();
    let file = env.write("crash.jsonl", &lines.join("\n"));
    let out = env.path("before-crash.jsonl");
    let mut child = env
        .std_cmd()
        .env("ASSAY_RUN_LEASE", "1s")
        .args([
            "run",
            "-d",
            file.to_str().unwrap(),
            "-t",
            &plugin("hostile-target"),
            "--target-config",
            "mode=sleep",
            "--target-config",
            "ms=200",
            "-s",
            &plugin("exact-match"),
            "-j",
            "2",
            "-o",
            out.to_str().unwrap(),
            "-q",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&out)
        .map(|t| t.lines().count())
        .unwrap_or(0)
        < 2
    {
        assert!(Instant::now() < deadline, "no item finished within 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no chance to finalize
    child.wait().unwrap();

    let runs = env.json(&["runs", "list", "--json"]);
    let run = &runs[0];
    assert_eq!(run["status"], "running", "{run}");
    let run_id = run["id"].as_str().unwrap();
    // Once the dead process's lease lapses, the run resumes here.
    std::thread::sleep(Duration::from_millis(1500));
    let report = env.json(&["runs", "resume", run_id, "--json", "-q"]);
    assert_eq!(report["status"], "completed", "{report}");
    assert_eq!(report["succeededCount"], total);
    assert_eq!(scorer(&report, "exact-match")["scoredCount"], total);
    let results = env
        .cmd()
        .args(["runs", "results", run_id, "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let indexes: BTreeSet<i64> = String::from_utf8_lossy(&results)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["itemIndex"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(indexes.len(), total, "one result per item, none repeated");
    // A finished run cannot be resumed again.
    env.cmd()
        .args(["runs", "resume", run_id])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("only pending or running"));
}

#[test]
fn repeat_runs_every_item_n_times_and_reports_the_uncertainty_over_items() {
    let env = Env::new();
    let out = env.path("trials.jsonl");
    let (matches, total) = exact_matches();
    let args = |extra: &[&str]| {
        let mut a = vec![
            "run".to_string(),
            "-d".into(),
            example("capitals.jsonl"),
            "-t".into(),
            plugin("echo"),
            "-s".into(),
            plugin("exact-match"),
            "--repeat".into(),
            "3".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let report = env.json(
        &args(&["--json", "-q", "--output", out.to_str().unwrap()])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(report["repeats"], 3, "{report}");
    assert_eq!(report["totalItems"], 3 * total);
    assert_eq!(report["succeededCount"], 3 * total);
    let exact = scorer(&report, "exact-match");
    assert_eq!(exact["itemCount"], total, "{report}");
    assert_eq!(exact["scoredCount"], 3 * total, "{report}");
    // echo is deterministic: every trial of an item scores alike, so the
    // mean over item means is the plain share of matches.
    let p = matches as f64 / total as f64;
    assert!(
        (exact["mean"].as_f64().unwrap() - p).abs() < 1e-9,
        "{report}"
    );
    // Item scores are 0 or 1: sd² = n p (1 - p) / (n - 1), SE = sd / √n.
    let n = total as f64;
    let se = (p * (1.0 - p) / (n - 1.0)).sqrt();
    assert!(
        (exact["standardError"].as_f64().unwrap() - se).abs() < 1e-9,
        "{report}"
    );
    // --output: one line per trial, each (index, trial) once.
    let lines: BTreeSet<(i64, i64)> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["index"].as_i64().unwrap(), v["trial"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(lines.len(), 3 * total);
    assert!(lines.iter().all(|(_, t)| (0..3).contains(t)));

    // The text summary and `runs show` name the trials and the interval.
    let run_id = report["runId"].as_str().unwrap();
    let shown = env
        .cmd()
        .args(["runs", "show", run_id])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let shown = String::from_utf8_lossy(&shown);
    assert!(
        shown.contains(&format!("{total} items x 3 trials")),
        "{shown}"
    );
    assert!(
        shown.contains("95% CI") && shown.contains(&format!("±{se:.3}")),
        "{shown}"
    );

    // Two runs that score alike: compare says the difference is not
    // significant.
    let second = env.json(
        &args(&["--json", "-q"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let second_id = second["runId"].as_str().unwrap();
    let cmp = env
        .cmd()
        .args(["runs", "compare", run_id, second_id])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let cmp = String::from_utf8_lossy(&cmp);
    assert!(
        cmp.contains("PAIRED T-TEST") && cmp.contains("not significant"),
        "{cmp}"
    );

    // Out of range: a usage error naming the flag, and no run.
    env.cmd()
        .args([
            "run",
            "-d",
            &example("capitals.jsonl"),
            "-t",
            "echo",
            "--repeat",
            "101",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--repeat").and(predicate::str::contains("100")));
    assert_eq!(
        env.json(&["runs", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
}
