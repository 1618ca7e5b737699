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

/// A dataset file of `questions`, each its own expected output.
fn questions_file(env: &Env, name: &str, questions: &[&str]) -> std::path::PathBuf {
    let lines: Vec<String> = questions
        .iter()
        .map(|q| serde_json::json!({"input": {"q": q}, "expectedOutput": q}).to_string())
        .collect();
    env.write(name, &lines.join("\n"))
}

/// Token usage is summed per run: the stub counts words (prompt: the words
/// of the messages; completion: the words of its echoed reply), so the
/// expected sums follow from the dataset. `assay run --json`, `assay runs
/// show` (from the stored results) and its text all report the same sums.
#[test]
fn token_usage_is_summed_over_the_run_and_shown_in_its_summary() {
    let env = Env::new();
    let stub = BackgroundStub::start(StubConfig::default()).unwrap();
    let questions = [
        "What is the capital of France",
        "Name a prime",
        "one",
        "How many legs does a spider have",
    ];
    let file = questions_file(&env, "usage.jsonl", &questions);
    // One prompt message (the question) and a reply that repeats it.
    let words: u64 = questions
        .iter()
        .map(|q| q.split_whitespace().count() as u64)
        .sum();
    let expected = serde_json::json!({
        "promptTokens": words, "completionTokens": words,
        "totalTokens": 2 * words, "items": questions.len(),
    });
    let mut args = run_args(&stub, &file);
    // No key: this stub does not ask for one.
    args[6] = args[6].replace(r#", "apiKeySecret": "OPENAI_API_KEY""#, "");
    let host = stub.addr().to_string();
    let out = env
        .cmd()
        .args(args)
        .args(["--allow-host", &host])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let report: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(report["succeededCount"], 4, "{report}");
    assert_eq!(report["tokenUsage"], expected, "{report}");

    let run_id = report["runId"].as_str().unwrap();
    let shown = env.json(&["runs", "show", run_id, "--json"]);
    assert_eq!(shown["tokenUsage"], expected, "from the stored results");
    let text = env.stdout(&["runs", "show", run_id]);
    let line = format!(
        "tokens    {} total · {words} prompt · {words} completion  (4 items reported usage)",
        2 * words
    );
    assert!(text.contains(&line), "{text}");
}

/// An LLM judge's calls are counted apart from the target's: the real
/// `openai-chat` target asks `stub-model`, the real `llm-judge` scorer asks
/// `judge-model`, and the stub sums the usage it reported per model. The
/// run's `scorerTokenUsage` (and the judge's own `tokenUsage`) equal what
/// the stub reported for the judge's requests; the target's `tokenUsage`
/// equals what it reported for the target's, in `assay run --json`,
/// `assay runs show --json` (from the stored results) and the text.
#[test]
fn judge_usage_is_summed_apart_from_the_targets_and_shown_in_its_summary() {
    let env = Env::new();
    let stub = BackgroundStub::start(StubConfig::default()).unwrap();
    let questions = [
        "What is the capital of France",
        "Name a prime",
        "one",
        "How many legs does a spider have",
        "Spell assay backwards please",
    ];
    let file = questions_file(&env, "judged.jsonl", &questions);
    let url = stub.url();
    let host = stub.addr().to_string();
    let judge = format!(
        r#"llm-judge={{"model": "judge-model", "baseUrl": "{url}/v1", "rubric": "STUB_REPLY: {{\"score\": 0.75, \"reason\": \"scripted\"}}"}}"#
    );
    let out = env
        .cmd()
        .args([
            "run",
            "-d",
            &file.display().to_string(),
            "-t",
            &plugin("openai-chat"),
        ])
        .arg("--target-config")
        .arg(format!(
            r#"{{"model": "stub-model", "baseUrl": "{url}/v1", "prompt": "{{{{input.q}}}}"}}"#
        ))
        .args(["--allow-host", &host, "-s", &plugin("llm-judge")])
        .args(["--scorer-config", &judge, "--json", "-q"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let report: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(report["succeededCount"], 5, "{report}");
    assert_eq!(
        common::scorer(&report, "llm-judge")["mean"],
        0.75,
        "{report}"
    );

    let stats = stub.stats();
    let reported = |model: &str, count: &str| {
        let u = stats.usage.get(model).copied().unwrap_or_default();
        assert_eq!(u.answers, 5, "one {model} request per item: {stats:?}");
        serde_json::json!({
            "promptTokens": u.prompt_tokens, "completionTokens": u.completion_tokens,
            "totalTokens": u.total_tokens, count: 5,
        })
    };
    let judged = reported("judge-model", "scores");
    let target = reported("stub-model", "items");
    assert_ne!(
        judged, target,
        "the two models' usage differ, so a mix-up shows"
    );

    let run_id = report["runId"].as_str().unwrap();
    let shown = env.json(&["runs", "show", run_id, "--json"]);
    for (summary, from) in [(&report, "assay run"), (&shown, "the stored results")] {
        assert_eq!(summary["scorerTokenUsage"], judged, "{from}: {summary}");
        assert_eq!(
            common::scorer(summary, "llm-judge")["tokenUsage"],
            judged,
            "{from}: {summary}"
        );
        assert_eq!(summary["tokenUsage"], target, "{from}: {summary}");
    }

    let text = env.stdout(&["runs", "show", run_id]);
    let line = format!(
        "judging   llm-judge: {} total · {} prompt · {} completion  (5 scores reported usage)",
        judged["totalTokens"], judged["promptTokens"], judged["completionTokens"]
    );
    assert!(text.contains(&line), "{text}");
    let line = format!(
        "tokens    {} total · {} prompt · {} completion  (5 items reported usage)",
        target["totalTokens"], target["promptTokens"], target["completionTokens"]
    );
    assert!(text.contains(&line), "{text}");
}

/// The commands of `examples/network/README.md`, against the stub: each
/// network plugin runs the example dataset and gives what the README says.
#[test]
fn the_network_examples_run_against_the_stub() {
    let env = Env::new();
    let stub = BackgroundStub::start(StubConfig::default()).unwrap();
    let file = common::example("network/questions.jsonl");
    let items = common::example_items("network/questions.jsonl");
    let host = stub.addr().to_string();
    let url = stub.url();
    let run = |target: &str, target_config: String, scorer: &str, extra: &[String]| -> Value {
        let mut cmd = env.cmd();
        cmd.args(["run", "-d", &file, "-t", &plugin(target), "--target-config"])
            .arg(target_config)
            .args(["--allow-host", &host, "-s", &plugin(scorer), "--json", "-q"])
            .args(extra);
        let out = cmd.assert().code(0).get_output().stdout.clone();
        serde_json::from_slice(&out).unwrap()
    };

    // openai-chat: the stub echoes the question; usage is its words twice.
    let report = run(
        "openai-chat",
        format!(
            r#"{{"model": "stub-model", "baseUrl": "{url}/v1", "prompt": "{{{{input.question}}}}"}}"#
        ),
        "exact-match",
        &[],
    );
    let words: u64 = items
        .iter()
        .map(|i| {
            i["input"]["question"]
                .as_str()
                .unwrap()
                .split_whitespace()
                .count() as u64
        })
        .sum();
    assert_eq!(words, 30, "the README's figure");
    assert_eq!(report["succeededCount"], 5, "{report}");
    assert_eq!(report["tokenUsage"]["promptTokens"], words, "{report}");
    assert_eq!(report["tokenUsage"]["completionTokens"], words, "{report}");

    // http-endpoint: the agent route answers with the question.
    let agent = format!(r#"{{"url": "{url}/agent", "output": "/answer/text"}}"#);
    let report = run("http-endpoint", agent.clone(), "exact-match", &[]);
    assert_eq!(report["succeededCount"], 5, "{report}");
    assert_eq!(report["scorers"][0]["mean"], 0.0, "{report}");

    // llm-judge: the rubric scripts the stub's verdict.
    let judge = format!(
        r#"llm-judge={{"model": "stub-model", "baseUrl": "{url}/v1", "rubric": "STUB_REPLY: {{\"score\": 0.5, \"reason\": \"a scripted verdict\"}}"}}"#
    );
    let report = run(
        "http-endpoint",
        agent,
        "llm-judge",
        &["--scorer-config".into(), judge],
    );
    let judge_summary = common::scorer(&report, "llm-judge");
    assert_eq!(judge_summary["mean"], 0.5, "{report}");
    assert_eq!(judge_summary["scoredCount"], 5, "{report}");
    let run_id = report["runId"].as_str().unwrap();
    let results = env
        .cmd()
        .args(["runs", "results", run_id, "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    for line in String::from_utf8(results).unwrap().lines() {
        let r: Value = serde_json::from_str(line).unwrap();
        assert_eq!(r["scores"][0]["reason"], "a scripted verdict", "{r}");
    }
}

/// Without `--concurrency`, a run whose plugins stay local keeps the cores
/// busy (128 in flight), and a run one of whose plugins may reach the
/// network, by `--allow-host` or a stored grant, sends at most the API's
/// default of 5 requests at once; a given `--concurrency` always wins.
#[test]
fn the_default_concurrency_depends_on_whether_the_run_may_reach_the_network() {
    let env = Env::new();
    let stub = start_stub();
    let file = dataset(&env);
    let host = stub.addr().to_string();
    let file_arg = file.to_str().unwrap();
    let concurrency_of = |extra: &[&str]| {
        let mut args = vec!["run", "-d", file_arg, "--json", "-q"];
        args.extend_from_slice(extra);
        let report = env.json(&args);
        let run_id = report["runId"].as_str().unwrap().to_string();
        let shown = env.json(&["runs", "show", &run_id, "--json"]);
        shown["run"]["config"]["options"]["maxConcurrency"].clone()
    };
    let local = ["-t", &plugin("echo"), "-s", &plugin("exact-match")].map(String::from);
    let local: Vec<&str> = local.iter().map(String::as_str).collect();
    let first = env.json(&[&["run", "-d", file_arg, "--json", "-q"][..], &local].concat());
    let first_id = first["runId"].as_str().unwrap().to_string();
    let shown = env.json(&["runs", "show", &first_id, "--json"]);
    assert_eq!(
        shown["run"]["config"]["options"]["maxConcurrency"], 128,
        "local plugins only"
    );

    let mut one_off = local.clone();
    one_off.extend(["--allow-host", &host]);
    assert_eq!(concurrency_of(&one_off), 5, "--allow-host");

    let mut explicit = one_off.clone();
    explicit.extend(["-j", "7"]);
    assert_eq!(concurrency_of(&explicit), 7, "a given --concurrency wins");

    env.cmd()
        .args(["plugin", "grant", "exact-match", "--host", &host])
        .assert()
        .success();
    assert_eq!(concurrency_of(&local), 5, "a stored grant on a scorer");

    // Re-scoring the local run with the now-granted scorer: the parent's
    // 128 would send 128 requests at once; the new run takes at most 5.
    let rescored = env.json(&[
        "runs",
        "rescore",
        &first_id,
        "-s",
        "exact-match",
        "--json",
        "-q",
    ]);
    let rescored_id = rescored["runId"].as_str().unwrap().to_string();
    let shown = env.json(&["runs", "show", &rescored_id, "--json"]);
    assert_eq!(
        shown["run"]["config"]["options"]["maxConcurrency"], 5,
        "{shown}"
    );
}
