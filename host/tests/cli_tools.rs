//! The tooling commands through the real binary: runs compare, dataset
//! export/import round trips, plugin check, completions, help.

mod common;

use common::{Env, example, example_items, plugin};
use predicates::prelude::*;
use serde_json::Value;

fn run_capitals(env: &Env, extra: &[&str]) -> Value {
    let mut args = vec![
        "run".to_string(),
        "-d".into(),
        example("capitals.jsonl"),
        "-t".into(),
        plugin("echo"),
        "-s".into(),
        plugin("exact-match"),
        "--json".into(),
        "-q".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.json(&args)
}

#[test]
fn runs_compare_shows_deltas_and_the_items_that_regressed() {
    let env = Env::new();
    // Baseline ignores case; the candidate does not, so exactly the items
    // whose input equals the expected output only up to case regress.
    let baseline = run_capitals(&env, &["--scorer-config", "exact-match:ignoreCase=true"]);
    let candidate = run_capitals(&env, &[]);
    let expected: Vec<i64> = example_items("capitals.jsonl")
        .iter()
        .enumerate()
        .filter(|(_, i)| {
            let (a, b) = (
                i["input"].as_str().unwrap(),
                i["expectedOutput"].as_str().unwrap(),
            );
            a != b && a.to_lowercase() == b.to_lowercase()
        })
        .map(|(n, _)| n as i64)
        .collect();
    assert!(
        !expected.is_empty(),
        "the example needs case-only differences"
    );
    let (a, b) = (
        baseline["runId"].as_str().unwrap(),
        candidate["runId"].as_str().unwrap(),
    );

    let result = env.json(&["runs", "compare", a, b, "--json"]);
    assert_eq!(result["hasRegression"], true);
    let exact = &result["scorers"]["exact-match"];
    assert_eq!(exact["regressed"], true);
    let delta = exact["delta"].as_f64().unwrap();
    let want = -(expected.len() as f64) / example_items("capitals.jsonl").len() as f64;
    assert!((delta - want).abs() < 1e-9, "delta {delta}, want {want}");
    let regressed: Vec<i64> = result["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["regressed"] == true)
        .map(|i| i["itemIndex"].as_i64().unwrap())
        .collect();
    assert_eq!(regressed, expected);

    // The text view lists them; --fail-on-regression turns it into exit 3.
    let out = env
        .cmd()
        .args(["runs", "compare", a, b, "--fail-on-regression"])
        .assert()
        .code(3)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("REGRESSED"), "{text}");
    assert!(
        text.contains(&format!("Regressed items ({})", expected.len())),
        "{text}"
    );
    // The other way round nothing regressed.
    env.cmd()
        .args(["runs", "compare", b, a, "--fail-on-regression"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("No item regressed"));
}

#[test]
fn dataset_export_round_trips_through_jsonl_and_csv() {
    let env = Env::new();
    let imported = env.json(&["dataset", "import", &example("capitals.jsonl"), "--json"]);
    assert_eq!(imported["action"], "created");
    let id = imported["dataset"]["id"].as_str().unwrap();

    // JSONL export: the same items as the file.
    let jsonl = env.path("export.jsonl");
    env.cmd()
        .args(["dataset", "export", id, "-o", jsonl.to_str().unwrap()])
        .assert()
        .success();
    let exported: Vec<Value> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(exported, example_items("capitals.jsonl"));

    // CSV export, re-imported under a new file name: same content, so the
    // import recognises the dataset instead of duplicating it.
    let csv = env.path("roundtrip.csv");
    env.cmd()
        .args([
            "dataset",
            "export",
            "capitals",
            "--format",
            "csv",
            "-o",
            csv.to_str().unwrap(),
        ])
        .assert()
        .success();
    let again = env.json(&["dataset", "import", csv.to_str().unwrap(), "--json"]);
    assert_eq!(again["action"], "reused", "{again}");
    assert_eq!(again["dataset"]["id"], id);
    assert_eq!(again["version"], imported["version"]);

    // Stdout export works too.
    env.cmd()
        .args(["dataset", "export", "capitals"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"expectedOutput\":\"Canberra\""));
}

#[test]
fn an_edited_file_becomes_a_new_version_of_the_same_dataset() {
    let env = Env::new();
    let file = env.write(
        "qa.jsonl",
        "{\"input\": \"a\", \"expectedOutput\": \"a\"}\n{\"input\": \"b\", \"expectedOutput\": \"x\"}\n",
    );
    let first = env.json(&["dataset", "import", file.to_str().unwrap(), "--json"]);
    std::fs::write(
        &file,
        "{\"input\": \"a\", \"expectedOutput\": \"a\"}\n{\"input\": \"b\", \"expectedOutput\": \"b\"}\n{\"input\": \"c\"}\n",
    )
    .unwrap();
    let second = env.json(&["dataset", "import", file.to_str().unwrap(), "--json"]);
    assert_eq!(second["dataset"]["id"], first["dataset"]["id"]);
    assert_eq!(second["action"], "updated");
    assert_eq!(
        (second["added"].as_i64(), second["changed"].as_i64()),
        (Some(1), Some(1))
    );
    assert!(second["version"].as_i64() > first["version"].as_i64());
    // A dataset of that name created by hand is never overwritten.
    env.cmd()
        .args(["dataset", "create", "--name", "manual"])
        .assert()
        .success();
    let clash = env.write("manual.jsonl", "{\"input\": 1}\n");
    env.cmd()
        .args(["dataset", "import", clash.to_str().unwrap()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--dataset-name"));
}

#[test]
fn plugin_check_accepts_a_component_and_rejects_garbage() {
    let env = Env::new();
    env.cmd()
        .args(["plugin", "check", &plugin("exact-match")])
        .assert()
        .success()
        .stdout(predicate::str::contains("ok"))
        .stdout(predicate::str::contains("scorer plugin `exact-match`"));
    let garbage = env.write("garbage.wasm", "\0asm but not really");
    env.cmd()
        .args([
            "plugin",
            "check",
            garbage.to_str().unwrap(),
            &plugin("echo"),
        ])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("FAIL"))
        .stdout(predicate::str::contains("target plugin `echo`"));
    let report = env.json(&["plugin", "info", &plugin("echo"), "--json"]);
    assert_eq!(report["report"]["kind"], "target");

    // add + list: registered plugins are usable by id.
    env.cmd()
        .args(["plugin", "add", &plugin("echo"), &plugin("exact-match")])
        .assert()
        .success();
    let listed = env.json(&["plugin", "list", "--json"]);
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"echo") && ids.contains(&"exact-match"),
        "{ids:?}"
    );
}

#[test]
fn completions_and_help() {
    let env = Env::new();
    env.cmd()
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("_assay()"))
        .stdout(predicate::str::contains("complete -F _assay"));
    env.cmd()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Exit codes"))
        .stdout(predicate::str::contains("ASSAY_DATABASE_URL"));
    env.cmd()
        .args(["runs", "compare", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Examples:"));
    // Usage errors exit 2.
    env.cmd().args(["run", "--bogus"]).assert().code(2);
}
