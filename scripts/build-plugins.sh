#!/usr/bin/env bash
# Builds every plugin crate (plugins/* and the test fixtures in
# tests/fixtures/*) as a WASI 0.2 component with the size-optimised `plugin`
# profile. Output: target/wasm32-wasip2/plugin/<crate_name>.wasm
#
# Usage: scripts/build-plugins.sh [--shipped-only] [extra cargo args...]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

parents=(plugins tests/fixtures)
if [[ "${1:-}" == "--shipped-only" ]]; then
    parents=(plugins)
    shift
fi

if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx wasm32-wasip2; then
    echo "error: the wasm32-wasip2 target is missing: run \`rustup target add wasm32-wasip2\`" >&2
    exit 1
fi

packages=()
for parent in "${parents[@]}"; do
    for manifest in "$parent"/*/Cargo.toml; do
        [[ -f "$manifest" ]] || continue
        # The directory name is the package name (a workspace convention).
        packages+=(-p "$(basename "$(dirname "$manifest")")")
    done
done

if [[ ${#packages[@]} -eq 0 ]]; then
    echo "no plugin crates found" >&2
    exit 1
fi

cargo build --target wasm32-wasip2 --profile plugin "${packages[@]}" "$@"

out="${CARGO_TARGET_DIR:-$root/target}/wasm32-wasip2/plugin"
echo "components in $out:"
for parent in "${parents[@]}"; do
    for manifest in "$parent"/*/Cargo.toml; do
        [[ -f "$manifest" ]] || continue
        name="$(basename "$(dirname "$manifest")")"
        wasm="$out/${name//-/_}.wasm"
        if [[ ! -f "$wasm" ]]; then
            echo "error: no component at $wasm" >&2
            exit 1
        fi
        printf '  %8d  %s\n' "$(wc -c <"$wasm")" "${name//-/_}.wasm"
    done
done
