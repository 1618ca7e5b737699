#!/bin/bash
# One run on several processes (BENCHMARKS.md, "One run on several processes").
#
# usage: scripts/bench-shared-run.sh BINARY PROCESSES ITEMS
#
# One run of ITEMS items (the hostile-target fixture sleeping 10 ms per item,
# no scorer, maxConcurrency 8) executed by PROCESSES `assay serve` processes
# sharing the PostgreSQL server at 127.0.0.1:$PGPORT (default 55491, user
# postgres, trust auth; a stock server: fsync and synchronous_commit on).
# Prints items/s from the run's startedAt to completedAt.
set -euo pipefail
BIN=$1; N=$2; ITEMS=$3
PGPORT=${PGPORT:-55491}
PLUGIN="${CARGO_TARGET_DIR:-target}/wasm32-wasip2/plugin/hostile_target.wasm"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
DB=bench_$(date +%s%N)
psql -q -h 127.0.0.1 -p "$PGPORT" -U postgres -c "CREATE DATABASE $DB" >/dev/null
export ASSAY_DATABASE_URL="postgres://postgres@127.0.0.1:$PGPORT/$DB"
export ASSAY_CACHE_DIR="$W/cache" ASSAY_LOG=warn
"$BIN" plugin add "$PLUGIN" >/dev/null
python3 -c "
import json
with open('$W/items.jsonl', 'w') as f:
    for i in range($ITEMS): f.write(json.dumps({'input': {'n': i}}) + '\n')"
DS=$("$BIN" dataset import "$W/items.jsonl" --name bench --json |
  python3 -c "import json,sys; print(json.load(sys.stdin)['dataset']['id'])")
PIDS=""; PORT0=57100
for i in $(seq 1 "$N"); do
  "$BIN" serve --no-auth --addr "127.0.0.1:$((PORT0 + i))" --grace 1s >/dev/null 2>"$W/serve-$i.log" &
  PIDS="$PIDS $!"
done
for i in $(seq 1 "$N"); do
  until curl -sf "http://127.0.0.1:$((PORT0 + i))/health" >/dev/null; do sleep 0.1; done
done
URL="http://127.0.0.1:$((PORT0 + 1))/api/datasets/$DS/runs"
RUN=$(curl -sf -X POST -H 'content-type: application/json' "$URL" \
  -d '{"targetType":"plugin","targetId":"hostile-target","targetConfig":{"mode":"sleep","ms":10},"scorerIds":[],"maxConcurrency":8}' |
  python3 -c "import json,sys; print(json.load(sys.stdin)['runId'])")
while :; do
  R=$(curl -sf "$URL/$RUN")
  S=$(echo "$R" | python3 -c "import json,sys; print(json.load(sys.stdin)['status'])")
  [ "$S" = running ] || [ "$S" = pending ] || break
  sleep 0.2
done
kill $PIDS 2>/dev/null; wait 2>/dev/null || true
echo "$R" | python3 -c "
import json, sys
from datetime import datetime
r = json.load(sys.stdin)
t = lambda s: datetime.fromisoformat(s.replace('Z', '+00:00'))
d = (t(r['completedAt']) - t(r['startedAt'])).total_seconds()
print(f\"processes=$N items={r['succeededCount']} status={r['status']} seconds={d:.2f} items/s={r['succeededCount'] / d:.0f}\")"
psql -q -h 127.0.0.1 -p "$PGPORT" -U postgres -c "DROP DATABASE $DB" >/dev/null 2>&1 || true
