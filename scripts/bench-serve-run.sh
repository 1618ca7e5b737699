#!/usr/bin/env bash
# One run executed by `assay serve` over real HTTP, SQLite: ITEMS items
# through the shipped `echo` target and `exact-match`, `contains` and
# `levenshtein` scorers (all wasm), `maxConcurrency` CONCURRENCY, triggered
# and polled over HTTP. Prints items/s from the run's startedAt to
# completedAt. Extra arguments go to `assay serve` (e.g.
# `--keep-resident-mib 16`). See BENCHMARKS.md, "Keeping the pages a call
# wrote".
#
#   scripts/bench-serve-run.sh target/release/assay 50000 128 [SERVE FLAGS...]
set -euo pipefail
BIN=$1; ITEMS=$2; CONCURRENCY=$3; shift 3
P="${CARGO_TARGET_DIR:-target}/wasm32-wasip2/plugin"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
export ASSAY_DATABASE_URL="sqlite://$W/assay.db?mode=rwc"
export ASSAY_CACHE_DIR="$W/cache" ASSAY_LOG=warn
"$BIN" plugin add "$P/echo.wasm" "$P/exact_match.wasm" "$P/contains.wasm" "$P/levenshtein.wasm" >/dev/null
python3 -c "
import json
with open('$W/items.jsonl', 'w') as f:
    for i in range($ITEMS): f.write(json.dumps({'input': f'item {i}', 'expectedOutput': f'item {i}'}) + '\n')"
DS=$("$BIN" dataset import "$W/items.jsonl" --name bench --json |
  python3 -c "import json,sys; print(json.load(sys.stdin)['dataset']['id'])")
PORT=57201
"$BIN" serve --no-auth --addr "127.0.0.1:$PORT" --grace 1s "$@" >/dev/null 2>"$W/serve.log" &
PID=$!
until curl -sf "http://127.0.0.1:$PORT/health" >/dev/null; do sleep 0.1; done
URL="http://127.0.0.1:$PORT/api/datasets/$DS/runs"
RUN=$(curl -sf -X POST -H 'content-type: application/json' "$URL" \
  -d "{\"targetType\":\"plugin\",\"targetId\":\"echo\",\"scorerIds\":[\"exact-match\",\"contains\",\"levenshtein\"],\"maxConcurrency\":$CONCURRENCY}" |
  python3 -c "import json,sys; print(json.load(sys.stdin)['runId'])")
while :; do
  R=$(curl -sf "$URL/$RUN")
  S=$(echo "$R" | python3 -c "import json,sys; print(json.load(sys.stdin)['status'])")
  [ "$S" = running ] || [ "$S" = pending ] || break
  sleep 0.2
done
CPU=$(awk '{print ($14 + $15) / 100}' "/proc/$PID/stat")
kill "$PID" 2>/dev/null; wait 2>/dev/null || true
echo "$R" | python3 -c "
import json, sys
from datetime import datetime
r = json.load(sys.stdin)
t = lambda s: datetime.fromisoformat(s.replace('Z', '+00:00'))
d = (t(r['completedAt']) - t(r['startedAt'])).total_seconds()
print(f\"flags='$*' items={r['succeededCount']} status={r['status']} seconds={d:.2f} items/s={r['succeededCount'] / d:.0f} serve_cpu_s=$CPU\")"
