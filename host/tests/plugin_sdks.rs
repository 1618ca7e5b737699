//! The Python and JavaScript SDKs end to end: components built with them
//! (and with the Rust SDK) load in the real sandbox, give identical scores
//! for the same scorer, map every error to its kind, and the projects that
//! `assay plugin new` writes build and pass their own tests as generated.
//!
//! The SDKs' build tools are installed by `scripts/install-deps.sh --sdks`
//! (`sdk/python/.venv` with componentize-py, `sdk/js/node_modules`): when they
//! are missing these tests fail with that command, they never skip.
//! Building a Python or JavaScript component takes 15-30 s of CPU, so every
//! component is built once per test process, several at a time.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::{Env, example};
use serde_json::{Value, json};

fn root() -> PathBuf {
    assay_test_support::workspace_root()
}

const INSTALL: &str =
    "run `scripts/install-deps.sh --sdks` (it installs the SDKs' pinned build tools)";

/// The Python of the SDK's virtual environment (componentize-py, the SDK).
fn python() -> PathBuf {
    let python = root().join("sdk/python/.venv/bin/python");
    assert!(
        python.is_file(),
        "the Python SDK's tools are missing ({} not found): {INSTALL}",
        python.display()
    );
    python
}

/// `node`, with the JavaScript SDK's tools installed.
fn node() -> &'static str {
    let tools = root().join("sdk/js/node_modules/@bytecodealliance/componentize-js");
    assert!(
        tools.is_dir(),
        "the JavaScript SDK's tools are missing ({} not found): {INSTALL}",
        tools.display()
    );
    let ok = Command::new("node").arg("--version").output();
    assert!(
        ok.is_ok_and(|o| o.status.success()),
        "`node` not found: {INSTALL}"
    );
    "node"
}

/// Runs `cmd`, panicking with its output unless it succeeds.
fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Where this test process builds components.
fn out_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sdk-components");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

fn build_python(source: &Path, out: &Path) {
    run_ok(
        Command::new(python())
            .args(["-m", "assay_plugin", "build"])
            .arg(source)
            .arg("-o")
            .arg(out),
    );
}

fn build_js(source: &Path, out: &Path) {
    run_ok(
        Command::new(node())
            .arg(root().join("sdk/js/build.js"))
            .arg(source)
            .arg("-o")
            .arg(out),
    );
}

/// The components of this test process: the word-overlap example in three
/// languages and the misbehaving fixtures, built once, in parallel.
struct Components {
    overlap_rs: PathBuf,
    overlap_py: PathBuf,
    overlap_js: PathBuf,
    hostile_py: PathBuf,
    hostile_js: PathBuf,
}

fn components() -> &'static Components {
    static C: OnceLock<Components> = OnceLock::new();
    C.get_or_init(|| {
        let (r, out) = (root(), out_dir());
        let c = Components {
            overlap_rs: rust_example(),
            overlap_py: out.join("word_overlap_py.wasm"),
            overlap_js: out.join("word_overlap_js.wasm"),
            hostile_py: out.join("hostile_py.wasm"),
            hostile_js: out.join("hostile_js.wasm"),
        };
        std::thread::scope(|s| {
            s.spawn(|| {
                build_python(
                    &r.join("examples/word-overlap/python/word_overlap.py"),
                    &c.overlap_py,
                );
                build_python(&r.join("tests/sdk-fixtures/hostile_py.py"), &c.hostile_py);
            });
            s.spawn(|| {
                build_js(
                    &r.join("examples/word-overlap/js/word-overlap.js"),
                    &c.overlap_js,
                );
                build_js(&r.join("tests/sdk-fixtures/hostile-js.js"), &c.hostile_js);
            });
        });
        c
    })
}

/// The Rust word-overlap example, built like the shipped plugins.
fn rust_example() -> PathBuf {
    let target_dir = assay_test_support::plugin_target_dir();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run_ok(
        Command::new(cargo)
            .current_dir(root())
            .args(["build", "--target", "wasm32-wasip2", "--profile", "plugin"])
            .args(["-p", "word-overlap-rs", "--target-dir"])
            .arg(&target_dir)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR"),
    );
    target_dir.join("wasm32-wasip2/plugin/word_overlap_rs.wasm")
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `assay plugin test FILE --dataset DATASET --json` and its per-item results.
fn plugin_test(env: &Env, file: &Path, dataset: &str, extra: &[&str]) -> (bool, Vec<Value>) {
    // Every item by default; a test that asks for fewer says `--limit` itself
    // (clap refuses the flag twice).
    let mut cmd = env.cmd();
    cmd.args([
        "plugin",
        "test",
        path_str(file),
        "--dataset",
        dataset,
        "--json",
    ]);
    if !extra.contains(&"--limit") {
        cmd.args(["--limit", "1000"]);
    }
    let out = cmd.args(extra).output().unwrap();
    let items: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "plugin test output is not JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), items.as_array().unwrap().clone())
}

/// What must be equal across languages: everything but timings.
fn comparable(items: &[Value]) -> Vec<Value> {
    items
        .iter()
        .map(|i| json!([i["item"], i["score"], i["reason"], i["error"]]))
        .collect()
}

#[test]
fn word_overlap_gives_identical_scores_in_rust_python_and_javascript() {
    let c = components();
    let env = Env::new();
    // The 20 capitals (the output scored is each item's input), then items
    // without ground truth, without words, and with non-ASCII text.
    let extra = env.write(
        "edge.jsonl",
        concat!(
            r#"{"input": "Rome"}"#,
            "\n",
            r#"{"input": "...", "expected": "!!"}"#,
            "\n",
            r#"{"input": "Zürich ist groß, ZÜRICH", "expected": "zurich Zürich"}"#,
            "\n",
            r#"{"input": {"city": "Paris", "n": 2}, "expected": "city paris"}"#,
            "\n",
        ),
    );
    for (dataset, config) in [
        (example("capitals.jsonl"), vec![]),
        (
            example("capitals.jsonl"),
            vec!["--config", "minWordLength=4"],
        ),
        (path_str(&extra).to_string(), vec![]),
    ] {
        let (ok_rs, rs) = plugin_test(&env, &c.overlap_rs, &dataset, &config);
        let (ok_py, py) = plugin_test(&env, &c.overlap_py, &dataset, &config);
        let (ok_js, js) = plugin_test(&env, &c.overlap_js, &dataset, &config);
        assert_eq!(
            comparable(&rs),
            comparable(&py),
            "Rust vs Python on {dataset} {config:?}"
        );
        assert_eq!(
            comparable(&rs),
            comparable(&js),
            "Rust vs JavaScript on {dataset} {config:?}"
        );
        assert_eq!((ok_rs, ok_py, ok_js), (ok_rs, ok_rs, ok_rs));
        if config.is_empty() && dataset.ends_with("capitals.jsonl") {
            assert!(ok_rs);
            assert_eq!(rs.len(), 20);
            // "Paris" against "Paris"; "The capital of Italy is Rome." against "Rome".
            assert_eq!(rs[0]["score"], json!(1.0));
            assert_eq!(rs[2]["score"], json!(1.0 / 6.0));
            assert_eq!(rs[2]["reason"], json!("1 of 6 words shared"));
        }
    }
    let (ok, edge) = plugin_test(&env, &c.overlap_py, path_str(&extra), &[]);
    assert!(!ok, "an item without ground truth fails the command");
    assert_eq!(edge[0]["error"]["kind"], json!("invalid-input"));
    assert_eq!(
        edge[0]["error"]["message"],
        json!("invalid input: item `1` has no ground truth")
    );
    assert_eq!(edge[1]["score"], json!(1.0));
    assert_eq!(edge[1]["reason"], json!("no words on either side"));
}

#[test]
fn a_run_with_the_three_word_overlap_scorers_stores_identical_means() {
    let c = components();
    let env = Env::new();
    let report = env.json(&[
        "run",
        "--dataset",
        &example("capitals.jsonl"),
        "--target",
        &common::plugin("echo"),
        "--scorer",
        path_str(&c.overlap_rs),
        "--scorer",
        path_str(&c.overlap_py),
        "--scorer",
        path_str(&c.overlap_js),
        "--json",
    ]);
    let mean = |id: &str| common::scorer(&report, id)["mean"].as_f64().unwrap();
    let rs = mean("word-overlap-rs");
    assert!(rs > 0.3 && rs < 1.0, "{report}");
    assert_eq!(mean("word-overlap-py"), rs);
    assert_eq!(mean("word-overlap-js"), rs);
}

/// `plugin test` of a hostile fixture with `do=WHAT`: (success, the item).
fn hostile(env: &Env, file: &Path, what: &str) -> (bool, Value) {
    let config = format!("do={what}");
    let (ok, items) = plugin_test(
        env,
        file,
        &example("capitals.jsonl"),
        &["--limit", "1", "--config", &config],
    );
    (ok, items[0].clone())
}

#[test]
fn sdk_errors_prints_and_scores_cross_the_sandbox_as_the_contract_says() {
    let c = components();
    let env = Env::new();
    for (file, lang) in [(&c.hostile_py, "python"), (&c.hostile_js, "js")] {
        let (ok, item) = hostile(&env, file, "score");
        assert!(ok, "{lang}: {item}");
        assert_eq!(item["score"], json!(0.5), "{lang}");
        assert_eq!(item["reason"], json!("fine"), "{lang}");
        assert_eq!(
            item["metadata"],
            json!({"lang": lang, "input": "Paris"}),
            "{lang}"
        );

        for (what, kind, message) in [
            ("invalid-input", "invalid-input", "invalid input: bad item"),
            ("transient", "transient", "transient failure: try again"),
            ("failed", "failed", "gave up"),
            ("out-of-range", "failed", "score 1.5 is outside [0, 1]"),
        ] {
            let (ok, item) = hostile(&env, file, what);
            assert!(!ok, "{lang} {what}");
            assert_eq!(item["error"]["kind"], json!(kind), "{lang} {what}: {item}");
            assert_eq!(item["error"]["message"], json!(message), "{lang} {what}");
        }

        // An unexpected exception is `failed`, its stack on stderr.
        let (ok, item) = hostile(&env, file, "crash");
        assert!(!ok);
        assert_eq!(item["error"]["kind"], json!("failed"), "{lang}: {item}");
        let (error, stderr) = (
            item["error"]["message"].as_str().unwrap(),
            item["logs"]["stderr"].as_str().unwrap(),
        );
        match lang {
            "python" => {
                assert_eq!(error, "KeyError: 'missing'");
                assert!(
                    stderr.contains("Traceback") && stderr.contains("hostile_py.py"),
                    "{stderr}"
                );
            }
            _ => {
                assert!(error.starts_with("TypeError: "), "{error}");
                assert!(stderr.contains("TypeError"), "{stderr}");
            }
        }

        let (ok, item) = hostile(&env, file, "print");
        assert!(ok, "{lang}: {item}");
        assert_eq!(
            item["logs"]["stdout"],
            json!("hello from stdout\n"),
            "{lang}"
        );
        assert_eq!(
            item["logs"]["stderr"],
            json!("hello from stderr\n"),
            "{lang}"
        );

        // A typo in the config is an error naming the field, not ignored.
        let (ok, items) = plugin_test(
            &env,
            file,
            &example("capitals.jsonl"),
            &["--limit", "1", "--config", "doo=crash"],
        );
        assert!(!ok);
        let message = items[0]["error"]["message"].as_str().unwrap();
        assert!(message.contains("unknown field `doo`"), "{lang}: {message}");
    }
}

#[test]
fn plugin_test_prints_each_score_and_the_logs() {
    let c = components();
    let env = Env::new();
    let out = env
        .cmd()
        .args(["plugin", "test", path_str(&c.hostile_py)])
        .args(["--dataset", &example("capitals.jsonl"), "--limit", "2"])
        .args(["--config", "do=print"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.starts_with("scorer `hostile-py` from "), "{stdout}");
    assert!(stdout.contains("2 of 20 items"), "{stdout}");
    assert_eq!(stdout.matches("item ").count(), 2, "{stdout}");
    assert!(stdout.contains("item 1: score 1.000"), "{stdout}");
    assert!(stdout.contains("  stdout| hello from stdout"), "{stdout}");
    assert!(stdout.contains("  stderr| hello from stderr"), "{stdout}");
    assert!(
        stdout.contains("2 ok (mean score 1.000), 0 failed"),
        "{stdout}"
    );

    let missing = env
        .cmd()
        .args(["plugin", "test", "nope.wasm", "--dataset"])
        .arg(example("capitals.jsonl"))
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope.wasm does not exist"));
}

/// `assay plugin new NAME --lang LANG --kind KIND` in `parent`.
fn plugin_new(env: &Env, parent: &Path, name: &str, lang: &str, kind: &str) -> PathBuf {
    env.cmd()
        .current_dir(parent)
        .args([
            "plugin",
            "new",
            name,
            "--lang",
            lang,
            "--kind",
            kind,
            "--sdk-root",
        ])
        .arg(root())
        .assert()
        .success();
    let dir = parent.join(name);
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(readme.contains("assay plugin check"), "{readme}");
    dir
}

/// `assay plugin check FILE` succeeds and names the plugin.
fn check(env: &Env, file: &Path, id: &str) {
    let out = env
        .cmd()
        .args(["plugin", "check", path_str(file)])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8_lossy(&out);
    assert!(out.contains(&format!("scorer plugin `{id}`")), "{out}");
}

#[test]
fn python_projects_from_plugin_new_test_build_and_check_as_generated() {
    let env = Env::new();
    let parent = env.path("projects");
    std::fs::create_dir_all(&parent).unwrap();
    let scorer = plugin_new(&env, &parent, "py-scorer", "python", "scorer");
    let target = plugin_new(&env, &parent, "py-target", "python", "target");
    // The README's three commands, with the SDK's environment.
    for (dir, tests) in [(&scorer, 4), (&target, 2)] {
        let out = run_ok(
            Command::new(python())
                .current_dir(dir)
                .args(["-m", "unittest", "-v"]),
        );
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(
            log.contains(&format!("Ran {tests} tests")) && log.contains("OK"),
            "{log}"
        );
    }
    run_ok(Command::new(python()).current_dir(&scorer).args([
        "-m",
        "assay_plugin",
        "build",
        "py_scorer.py",
    ]));
    check(&env, &scorer.join("py_scorer.wasm"), "py-scorer");
    // The scaffold's scorer is exact match: "Paris" is its own answer.
    let (ok, items) = plugin_test(
        &env,
        &scorer.join("py_scorer.wasm"),
        &example("capitals.jsonl"),
        &["--limit", "3"],
    );
    assert!(ok);
    assert_eq!(comparable(&items)[0], json!([1, 1.0, "equal", null]));
    assert_eq!(items[2]["score"], json!(0.0));
    // An existing project is never overwritten.
    env.cmd()
        .current_dir(&parent)
        .args([
            "plugin",
            "new",
            "py-scorer",
            "--lang",
            "python",
            "--sdk-root",
        ])
        .arg(root())
        .assert()
        .failure()
        .stderr(predicates::str::contains("already exists"));
}

#[test]
fn javascript_projects_from_plugin_new_test_build_and_check_as_generated() {
    let env = Env::new();
    let parent = env.path("projects");
    std::fs::create_dir_all(&parent).unwrap();
    node();
    let scorer = plugin_new(&env, &parent, "js-scorer", "js", "scorer");
    let target = plugin_new(&env, &parent, "js-target", "js", "target");
    for (dir, tests) in [(&scorer, 4), (&target, 2)] {
        // `npm install` links the SDK: nothing is downloaded.
        run_ok(Command::new("npm").current_dir(dir).args([
            "install",
            "--offline",
            "--no-audit",
            "--no-fund",
        ]));
        let out = run_ok(Command::new("npm").current_dir(dir).args(["test"]));
        let log = String::from_utf8_lossy(&out.stdout);
        assert!(
            log.contains(&format!("# pass {tests}")) && log.contains("# fail 0"),
            "{log}"
        );
    }
    run_ok(
        Command::new("npm")
            .current_dir(&scorer)
            .args(["run", "build"]),
    );
    check(&env, &scorer.join("js_scorer.wasm"), "js-scorer");
    let (ok, items) = plugin_test(
        &env,
        &scorer.join("js_scorer.wasm"),
        &example("capitals.jsonl"),
        &["--limit", "3"],
    );
    assert!(ok);
    assert_eq!(comparable(&items)[0], json!([1, 1.0, "equal", null]));
}

#[test]
fn rust_projects_from_plugin_new_test_build_and_check_as_generated() {
    let env = Env::new();
    let parent = env.path("projects");
    std::fs::create_dir_all(&parent).unwrap();
    let scorer = plugin_new(&env, &parent, "rs-scorer", "rust", "scorer");
    let target = plugin_new(&env, &parent, "rs-target", "rust", "target");
    // The workspace's lock file pins the same dependency versions, and one
    // target directory is shared, so the dependencies compile once.
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sdk-rust-projects");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let cargo_in = |dir: &Path| {
        std::fs::copy(root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(dir)
            .env("CARGO_TARGET_DIR", &target_dir)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS");
        cmd
    };
    for (dir, tests) in [(&scorer, 4), (&target, 2)] {
        let out = run_ok(cargo_in(dir).arg("test"));
        let log = String::from_utf8_lossy(&out.stdout);
        assert!(log.contains(&format!("{tests} passed; 0 failed")), "{log}");
    }
    run_ok(cargo_in(&scorer).args(["build", "--target", "wasm32-wasip2", "--release"]));
    check(
        &env,
        &target_dir.join("wasm32-wasip2/release/rs_scorer.wasm"),
        "rs-scorer",
    );
}
