#!/usr/bin/env bash
# Runs every check and test of the workspace: formatting, clippy, the unit,
# integration and end-to-end tests (SQLite and a throwaway PostgreSQL), the
# plugins' native tests, the Python and JavaScript SDK suites, the playground in headless Chromium, and the Mastra
# compatibility test (Mastra's published client against a real
# `assay serve`). Installs the prerequisites first.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh --postgres --sdks --browser --node

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

# The node tests below drive target/debug/assay, which `cargo test` built
# for the CLI tests.
target_dir="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)"

echo "==> playground in headless Chromium (tests/browser)"
(cd tests/browser && node --test --test-reporter=spec)

echo "==> Mastra client compatibility (tests/mastra-client)"
(cd tests/mastra-client && ASSAY_BIN="$target_dir/debug/assay" node --test --test-reporter=spec)
