#!/usr/bin/env bash
# Installs what building and testing assay needs beyond a Rust toolchain:
#   - the wasm32-wasip2 target (plugins are WASI 0.2 components);
#   - with --postgres: PostgreSQL server binaries (the storage contract tests
#     and the crash test start a throwaway server; they never skip);
#   - the Python and JavaScript plugin SDKs' build tools, pinned: a virtual
#     environment in sdk/python/.venv with componentize-py and the SDK
#     (editable), and sdk/js/node_modules from sdk/js/package-lock.json
#     (componentize-js, jco, rolldown). The SDK tests build components with
#     them and never skip. Needs python3 (>= 3.10, with venv) and node (>= 20)
#     with npm; Debian packages are installed when they are missing.
# Idempotent: does nothing for what is already installed.
set -euo pipefail

want_postgres=false
[[ "${1:-}" == "--postgres" ]] && want_postgres=true

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

# --- Python and JavaScript plugin SDKs ---------------------------------------
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sudo_cmd=()
[[ "$(id -u)" != 0 ]] && sudo_cmd=(sudo)
apt_install() {
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "$@" >/dev/null
}

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

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "==> installing node and npm (Debian packages nodejs, npm)"
    apt_install nodejs npm
fi
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
    echo "error: the JavaScript SDK needs node >= 20, found $(node --version)" >&2
    exit 1
fi
# npm ci only when the lock file changed since the last install.
lock="$root/sdk/js/package-lock.json"
stamp="$root/sdk/js/node_modules/.assay-lock-sha256"
want_js="$(sha256sum "$lock" | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want_js" ]]; then
    echo "==> installing the JavaScript SDK's tools into sdk/js/node_modules (npm ci)"
    (cd "$root/sdk/js" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want_js" >"$stamp"
fi
# The JavaScript example links the SDK (a file: dependency, no download).
(cd "$root/examples/word-overlap/js" && npm install --offline --no-audit --no-fund --loglevel=error >/dev/null)
