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

echo "==> Python and JavaScript SDKs' own suites, and the word-overlap examples natively"
sdk/python/.venv/bin/python -m unittest discover -s sdk/python/tests
(cd sdk/js && node --test)
(cd examples/word-overlap/python && ../../../sdk/python/.venv/bin/python -m unittest test_word_overlap)
(cd examples/word-overlap/js && node --test)

echo "==> playground in headless Chromium (tests/browser)"
# Drives target/debug/assay, which `cargo test` built for the CLI tests.
(cd tests/browser && node --test --test-reporter=spec)
