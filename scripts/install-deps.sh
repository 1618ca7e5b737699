#!/usr/bin/env bash
# Installs what building and testing assay needs beyond a Rust toolchain:
#   - the wasm32-wasip2 target (plugins are WASI 0.2 components);
#   - with --postgres: PostgreSQL server binaries (the storage contract tests
#     and the crash test start a throwaway server; they never skip);
#   - with --browser: Chromium (Debian package `chromium`), Node.js and the
#     pinned npm packages of tests/browser (the playground's browser test;
#     playwright-core drives the system Chromium and downloads no browser).
# Idempotent: does nothing for what is already installed.
set -euo pipefail

want_postgres=false
want_browser=false
for arg in "$@"; do
    case "$arg" in
        --postgres) want_postgres=true ;;
        --browser) want_browser=true ;;
        *) echo "error: unknown option $arg (expected --postgres, --browser)" >&2; exit 2 ;;
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

have_pg_server() {
    command -v initdb >/dev/null 2>&1 && return 0
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

if $want_postgres && ! have_pg_server; then
    echo "==> installing PostgreSQL server binaries (Debian package postgresql)"
    sudo_cmd=()
    [[ "$(id -u)" != 0 ]] && sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq postgresql >/dev/null
    # The package starts a cluster of its own; the tests start their own.
    "${sudo_cmd[@]}" service postgresql stop >/dev/null 2>&1 || true
fi

apt_install() {
    local sudo_cmd=()
    [[ "$(id -u)" != 0 ]] && sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "$@" >/dev/null
}

if $want_browser; then
    if ! command -v chromium >/dev/null 2>&1; then
        echo "==> installing Chromium (Debian package chromium)"
        apt_install chromium
    fi
    if ! command -v npm >/dev/null 2>&1; then
        echo "==> installing Node.js and npm (Debian packages nodejs, npm)"
        apt_install nodejs npm
    fi
    browser_tests="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/browser"
    if [[ ! -d "$browser_tests/node_modules/playwright-core" ]]; then
        echo "==> installing the browser test's npm packages (tests/browser, package-lock.json)"
        (cd "$browser_tests" && npm ci --no-audit --no-fund --silent)
    fi
fi
