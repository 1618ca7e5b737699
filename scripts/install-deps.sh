#!/usr/bin/env bash
# Installs what building and testing assay needs beyond a Rust toolchain:
#   - the wasm32-wasip2 target (plugins are WASI 0.2 components);
#   - with --postgres: PostgreSQL server binaries (the storage contract tests
#     and the crash test start a throwaway server; they never skip);
#   - with --sdks: the Python and JavaScript plugin SDKs' build tools, pinned:
#     a virtual environment in sdk/python/.venv with componentize-py and the
#     SDK (editable), and sdk/js/node_modules from sdk/js/package-lock.json
#     (componentize-js, jco, rolldown). The SDK tests build components with
#     them and never skip. Needs python3 (>= 3.10, with venv) and node (>= 20)
#     with npm; Debian packages are installed when they are missing;
#   - with --browser: Chromium (Debian package `chromium`), Node.js and the
#     pinned npm packages of tests/browser (the playground's browser test;
#     playwright-core drives the system Chromium and downloads no browser);
#   - with --node: Node.js and the pinned npm packages of tests/mastra-client
#     (Mastra's published client and server schemas), which the Mastra
#     compatibility test drives against a real `assay serve`.
# Idempotent: does nothing for what is already installed (npm packages are
# installed again only when their lock file changed).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

want_postgres=false
want_sdks=false
want_browser=false
want_node=false
for arg in "$@"; do
    case "$arg" in
        --postgres) want_postgres=true ;;
        --sdks) want_sdks=true ;;
        --browser) want_browser=true ;;
        --node) want_node=true ;;
        *) echo "error: unknown option $arg (expected --postgres, --sdks, --browser, --node)" >&2; exit 2 ;;
    esac
done

sudo_cmd=()
[[ "$(id -u)" != 0 ]] && sudo_cmd=(sudo)
apt_updated=false
apt_install() {
    if ! $apt_updated; then
        "${sudo_cmd[@]}" apt-get update -qq
        apt_updated=true
    fi
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "$@" >/dev/null
}

# `npm ci` in $1 unless node_modules was installed from the same lock file.
npm_ci_once() {
    local dir="$1" stamp="$1/node_modules/.assay-lock-sha256" want
    want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
        echo "==> installing the npm packages of ${dir#"$root"/} (npm ci, package-lock.json)"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
        echo "$want" >"$stamp"
    fi
}

need_node() {
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        echo "==> installing node and npm (Debian packages nodejs, npm)"
        apt_install nodejs npm
    fi
    if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
        echo "error: node >= 20 is needed, found $(node --version)" >&2
        exit 1
    fi
}

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
    apt_install postgresql
    # The package starts a cluster of its own; the tests start their own.
    "${sudo_cmd[@]}" service postgresql stop >/dev/null 2>&1 || true
fi

if $want_sdks; then
    if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        echo "==> installing python3 with venv (Debian packages python3, python3-venv)"
        apt_install python3 python3-venv
    fi
    if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
        echo "error: the Python SDK needs python3 >= 3.10, found $(python3 --version)" >&2
        exit 1
    fi
    venv="$root/sdk/python/.venv"
    want_py="$(grep -E '^componentize-py==' "$root/sdk/python/requirements.txt")"
    if [[ ! -x "$venv/bin/componentize-py" ]] || ! "$venv/bin/python" -m pip freeze 2>/dev/null | grep -qx "$want_py"; then
        echo "==> installing the Python SDK's tools into sdk/python/.venv ($want_py)"
        python3 -m venv "$venv"
        "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$root/sdk/python/requirements.txt"
        "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$root/sdk/python"
    fi
    need_node
    npm_ci_once "$root/sdk/js"
    # The JavaScript example links the SDK (a file: dependency, no download).
    (cd "$root/examples/word-overlap/js" && npm install --offline --no-audit --no-fund --loglevel=error >/dev/null)
fi

if $want_browser; then
    if ! command -v chromium >/dev/null 2>&1; then
        echo "==> installing Chromium (Debian package chromium)"
        apt_install chromium
    fi
    need_node
    npm_ci_once "$root/tests/browser"
fi

if $want_node; then
    need_node
    npm_ci_once "$root/tests/mastra-client"
fi
