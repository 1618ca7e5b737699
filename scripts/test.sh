#!/usr/bin/env bash
# Runs every check and test of the workspace: formatting, clippy, the unit,
# integration and end-to-end tests (SQLite and a throwaway PostgreSQL), and
# the plugins' native tests, and the playground in headless Chromium.
# Installs the prerequisites first.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh --postgres --sdks --browser

# A cold build gains nothing from incremental state (CI always starts from a
# fresh clone), and it costs about 1.6 GB of disk; a developer can opt back in.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

echo "==> cargo fmt --check"
cargo fmt --all --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> building plugins (wasm32-wasip2)"
./scripts/build-plugins.sh

echo "==> cargo test"
cargo test --workspace --locked

echo "==> playground in headless Chromium (tests/browser)"
cargo build --locked -p assay
(cd tests/browser && node --test --test-reporter=spec)
