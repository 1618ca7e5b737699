#!/usr/bin/env bash
# Installs what building and testing assay needs beyond a Rust toolchain:
#   - the wasm32-wasip2 target (plugins are WASI 0.2 components);
#   - with --postgres: PostgreSQL server binaries (the storage contract tests
#     and the crash test start a throwaway server; they never skip);
#   - with --browser: Chromium (Debian package `chromium`), Node.js and the
#     pinned npm packages of tests/browser (the playground's browser test;
#     playwright-core drives the system Chromium and downloads no browser);
#   - with --node: Node.js and the npm packages of tests/mastra-client
#     (Mastra's published client and schemas, pinned by its
#     package-lock.json), which the Mastra compatibility test drives.
# Idempotent: does nothing for what is already installed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
want_postgres=false
want_browser=false
want_node=false
for arg in "$@"; do
    case "$arg" in
        --postgres) want_postgres=true ;;
        --browser) want_browser=true ;;
        --node) want_node=true ;;
        *) echo "error: unknown option $arg (expected --postgres, --browser, --node)" >&2; exit 2 ;;
    esac
done

if ! command -v cargo >/dev/null; then
    echo "error: cargo not found. Install Rust with rustup (https://rustup.rs) first." >&2
    exit 1
fi

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    echo "==> installing the wasm32-wasip2 target"
    rustup target add wasm32-wasip2
fi

apt_install() {
    local sudo_cmd=()
    [[ "$(id -u)" != 0 ]] && sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "$@" >/dev/null
}

have_pg_server() {
    command -v initdb >/dev/null 2>&1 && return 0
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

if $want_postgres && ! have_pg_server; then
    echo "==> installing PostgreSQL server binaries (Debian package postgresql)"
    apt_install postgresql
    # The package starts a cluster of its own; the tests start their own.
    sudo_cmd=()
    [[ "$(id -u)" != 0 ]] && sudo_cmd=(sudo)
    "${sudo_cmd[@]}" service postgresql stop >/dev/null 2>&1 || true
fi

if { $want_browser || $want_node; } && ! { command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; }; then
    echo "==> installing Node.js and npm (Debian packages nodejs, npm)"
    apt_install nodejs npm
fi

# `npm ci` in tests/<name> unless node_modules was installed from the same
# package-lock.json already (a stamp file records the lock's hash).
npm_ci() {
    local dir="$root/tests/$1"
    local lock_sum stamp
    lock_sum="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
    stamp="$dir/node_modules/.installed-from-lock"
    if [[ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]]; then
        echo "==> installing the npm packages of tests/$1 (npm ci, package-lock.json)"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
        echo "$lock_sum" >"$stamp"
    fi
}

if $want_browser; then
    if ! command -v chromium >/dev/null 2>&1; then
        echo "==> installing Chromium (Debian package chromium)"
        apt_install chromium
    fi
    npm_ci browser
fi

if $want_node; then
    npm_ci mastra-client
fi
