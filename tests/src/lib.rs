//! Helpers for assay's end-to-end tests (the tests live in `tests/tests/`).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// Path of the `assay` binary of this workspace's build.
///
/// `cargo test --workspace` builds it before any test runs; when this crate
/// is tested alone (`cargo test -p assay-e2e`) it is built here, into the
/// same target directory.
pub fn assay_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // target/<profile>/deps/<test-exe> -> target/<profile>/assay
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("test executable lives in target/<profile>/deps");
        let bin = profile_dir.join(format!("assay{}", std::env::consts::EXE_SUFFIX));
        if !bin.is_file() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .args(["build", "-p", "assay", "--bin", "assay"])
                .status()
                .expect("run cargo build -p assay");
            assert!(status.success(), "building the assay binary failed");
        }
        assert!(bin.is_file(), "no assay binary at {}", bin.display());
        bin
    })
    .clone()
}
