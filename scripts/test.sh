#!/usr/bin/env bash
# Runs every check and test of the workspace: formatting, clippy, the unit,
# integration and end-to-end tests (SQLite and a throwaway PostgreSQL), and
# the plugins' native tests, then the Mastra compatibility test (Mastra's
# published client against a real `assay serve`). Installs the
# prerequisites first.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh --postgres --node

echo "==> cargo fmt --check"
cargo fmt --all --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> building plugins (wasm32-wasip2)"
./scripts/build-plugins.sh

echo "==> cargo test"
cargo test --workspace --locked

echo "==> Mastra client compatibility (tests/mastra-client)"
cargo build --locked -p assay
target_dir="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)"
(cd tests/mastra-client && ASSAY_BIN="$target_dir/debug/assay" npm test)
