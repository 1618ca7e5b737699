//! Helpers for the CLI tests: every test gets its own database in a temp
//! directory; compiled plugins are cached in one directory shared by all
//! tests (so each component is compiled once per `cargo test`).

#![allow(dead_code)]

pub mod processes;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

/// Path of the `assay` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_assay");

/// One test's world: a temp dir holding its database (or a database of
/// its own on the test PostgreSQL server) and files.
pub struct Env {
    pub dir: tempfile::TempDir,
    postgres: Option<String>,
}

impl Env {
    /// A world with a SQLite database in the temp dir.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            postgres: None,
        }
    }

    /// A world with a fresh database on the test PostgreSQL server (see
    /// `assay_test_support::postgres`), for several processes at once.
    pub fn postgres() -> Self {
        Self {
            postgres: Some(assay_test_support::postgres::fresh_postgres_database()),
            ..Self::new()
        }
    }

    /// The database URL of this test.
    pub fn database_url(&self) -> String {
        match &self.postgres {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.dir.path().join("assay.db").display()
            ),
        }
    }

    /// A path inside this test's temp dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file into the temp dir and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("write test file");
        path
    }

    /// `assay` with this test's database and the shared plugin cache, and
    /// no environment leaking in from the developer's shell.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(BIN);
        for (k, v) in self.envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd
    }

    /// A std `Command` (for tests that signal the process).
    pub fn std_cmd(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(BIN);
        for (k, v) in self.envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd
    }

    fn envs(&self) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("ASSAY_DATABASE_URL", Some(self.database_url())),
            ("ASSAY_CACHE_DIR", Some(cache_dir().display().to_string())),
            ("ASSAY_LOG", Some("warn".into())),
            ("ASSAY_PLUGINS_DIR", None),
            ("ASSAY_TENANT", None),
            ("ASSAY_SECRET_KEY", None),
            ("ASSAY_SECRET_KEY_FILE", None),
            // The generated secret key goes to the data directory: this
            // test's, never the developer's.
            (
                "XDG_DATA_HOME",
                Some(self.path("data").display().to_string()),
            ),
            ("RUST_LOG", None),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", None),
        ]
    }

    /// Runs `assay args...`, expecting success, and returns stdout as text.
    pub fn stdout(&self, args: &[&str]) -> String {
        let out = self
            .cmd()
            .args(args)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        String::from_utf8(out).expect("stdout is UTF-8")
    }

    /// Runs `assay args...`, expecting success, and parses stdout as JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        let out = self
            .cmd()
            .args(args)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        serde_json::from_slice(&out).unwrap_or_else(|e| {
            panic!(
                "stdout of {args:?} is not JSON ({e}):\n{}",
                String::from_utf8_lossy(&out)
            )
        })
    }
}

/// The compiled-plugin cache shared by the CLI tests.
pub fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("assay-cli-plugin-cache")
}

/// Path of a built plugin component, as a string for argument lists.
pub fn plugin(name: &str) -> String {
    assay_test_support::plugin_wasm(name)
        .to_str()
        .expect("utf-8 path")
        .to_string()
}

/// Path of a file in the repository's `examples/`.
pub fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
        .to_str()
        .expect("utf-8 path")
        .to_string()
}

/// The items of an example JSONL file.
pub fn example_items(name: &str) -> Vec<Value> {
    std::fs::read_to_string(example(name))
        .expect("example exists")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("example line is JSON"))
        .collect()
}

/// The scorer summary of `id` in a report.
pub fn scorer<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["scorers"]
        .as_array()
        .expect("scorers array")
        .iter()
        .find(|s| s["scorerId"] == id)
        .unwrap_or_else(|| panic!("no scorer {id} in {report}"))
}
