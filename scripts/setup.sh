#!/usr/bin/env bash
# From a fresh machine with Rust (rustup) to a first evaluation:
#   1. installs the wasm32-wasip2 target,
#   2. builds the shipped plugins (WASI components) and the `assay` binary,
#   3. registers the plugins in the embedded SQLite database,
#   4. runs the example dataset through a target and three scorers.
# Set ASSAY_DATABASE_URL to use another database (default: an SQLite file in
# your data directory; `assay --help` shows where).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh

echo "==> building the shipped plugins (wasm32-wasip2)"
./scripts/build-plugins.sh --shipped-only

echo "==> building assay (release)"
cargo build --release --locked -p assay
target_dir="${CARGO_TARGET_DIR:-target}"
assay="$target_dir/release/assay"

echo "==> registering the shipped plugins"
plugins=()
for manifest in plugins/*/Cargo.toml; do
    name="$(basename "$(dirname "$manifest")")"
    plugins+=("$target_dir/wasm32-wasip2/plugin/${name//-/_}.wasm")
done
"$assay" plugin add "${plugins[@]}"

echo "==> example run: examples/capitals.jsonl through the echo target"
"$assay" run \
    --dataset examples/capitals.jsonl \
    --target echo \
    --scorer exact-match --scorer levenshtein --scorer content-similarity \
    --scorer-config 'exact-match:ignoreCase=true'

echo
echo "Done. Try: $assay --help, $assay runs list, $assay serve"
