//! Test helpers shared by assay's crates.
//!
//! * [`plugin_wasm`] builds the workspace's plugin crates (`plugins/*` and
//!   `tests/fixtures/*`) for `wasm32-wasip2` once per test process and returns
//!   the path of one component. It uses its own target directory so that it
//!   never waits on the lock of the `cargo test` that runs it.
//! * [`postgres`] starts a throwaway PostgreSQL server (see that module).

pub mod postgres;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The root of the assay workspace.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../..")
        .canonicalize()
        .expect("workspace root exists")
}

/// Directories that hold one plugin crate each.
const PLUGIN_PARENTS: &[&str] = &["plugins", "tests/fixtures"];

/// Names of every plugin crate in the workspace (directory name = package name).
pub fn plugin_crates() -> Vec<String> {
    let root = workspace_root();
    let mut names = Vec::new();
    for parent in PLUGIN_PARENTS {
        let Ok(entries) = std::fs::read_dir(root.join(parent)) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.path().join("Cargo.toml").is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    names.sort();
    names
}

/// The directory the plugin fixtures are built into.
pub fn plugin_target_dir() -> PathBuf {
    workspace_root().join("target/plugin-fixtures")
}

/// Builds every plugin crate (once per process) and returns the directory
/// holding the `.wasm` components.
///
/// Panics with the compiler output if the build fails, or with the rustup
/// command to run if the `wasm32-wasip2` target is missing.
pub fn built_plugins_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = workspace_root();
        let target_dir = plugin_target_dir();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(&root)
            .args(["build", "--target", "wasm32-wasip2", "--profile", "plugin"])
            .arg("--target-dir")
            .arg(&target_dir)
            // Do not inherit flags meant for the host build (coverage, etc.).
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR");
        for name in plugin_crates() {
            // `name@version`: a plugin may share its name with a crates.io
            // dependency (`regex`). Workspace crates share one version.
            cmd.arg("-p")
                .arg(format!("{name}@{}", env!("CARGO_PKG_VERSION")));
        }
        let out = cmd.output().expect("run cargo to build plugin fixtures");
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            if stderr.contains("wasm32-wasip2") && stderr.contains("target may not be installed")
            {
                panic!(
                    "the wasm32-wasip2 target is missing: run `rustup target add wasm32-wasip2`\n{stderr}"
                );
            }
            panic!("building plugin fixtures failed:\n{stderr}");
        }
        target_dir.join("wasm32-wasip2/plugin")
    })
}

/// Path of the built component for plugin crate `name` (e.g. `"exact-match"`).
pub fn plugin_wasm(name: &str) -> PathBuf {
    let path = built_plugins_dir().join(format!("{}.wasm", name.replace('-', "_")));
    assert!(
        path.is_file(),
        "no component for plugin `{name}` at {}; known plugin crates: {:?}",
        path.display(),
        plugin_crates()
    );
    path
}
