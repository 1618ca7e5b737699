#!/usr/bin/env bash
# Installs what building and testing assay needs beyond a Rust toolchain:
#   - the wasm32-wasip2 target (plugins are WASI 0.2 components);
#   - with --postgres: PostgreSQL server binaries (the storage contract tests
#     and the crash test start a throwaway server; they never skip);
#   - with --node: Node.js and npm (Debian packages, when missing) and the
#     npm packages of tests/mastra-client (Mastra's published client, pinned
#     by its package-lock.json), which the Mastra compatibility test drives.
# Idempotent: does nothing for what is already installed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
want_postgres=false
want_node=false
for arg in "$@"; do
    case "$arg" in
        --postgres) want_postgres=true ;;
        --node) want_node=true ;;
        *) echo "usage: $0 [--postgres] [--node]" >&2; exit 2 ;;
    esac
done

sudo_cmd=()
[[ "$(id -u)" != 0 ]] && sudo_cmd=(sudo)

if ! command -v cargo >/dev/null; then
    echo "error: cargo not found. Install Rust with rustup (https://rustup.rs) first." >&2
    exit 1
fi

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    echo "==> installing the wasm32-wasip2 target"
    rustup target add wasm32-wasip2
fi

have_pg_server() {
    command -v initdb >/dev/null 2>&1 && return 0
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

if $want_postgres && ! have_pg_server; then
    echo "==> installing PostgreSQL server binaries (Debian package postgresql)"
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq postgresql >/dev/null
    # The package starts a cluster of its own; the tests start their own.
    "${sudo_cmd[@]}" service postgresql stop >/dev/null 2>&1 || true
fi

if $want_node; then
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        echo "==> installing Node.js and npm (Debian packages nodejs, npm)"
        "${sudo_cmd[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq nodejs npm >/dev/null
    fi
    client_dir="$root/tests/mastra-client"
    lock_sum="$(sha256sum "$client_dir/package-lock.json" | cut -d' ' -f1)"
    stamp="$client_dir/node_modules/.installed-from-lock"
    if [[ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]]; then
        echo "==> installing the npm packages of tests/mastra-client (npm ci)"
        (cd "$client_dir" && npm ci --no-audit --no-fund --loglevel=error)
        echo "$lock_sum" >"$stamp"
    fi
fi
