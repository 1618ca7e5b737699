#!/usr/bin/env python3
"""How the scheduler's claim and a tenant's usage read scale with a long run
history on SQLite: creates a database with the assay binary (migrations),
adds FINISHED finished runs and 5 pending ones, then times the claim's
choice of a run (the SELECT inside `claim_next_run`, read from
host/crates/store/src/sqlite/claim.rs) and the run counts of the tenant
usage query (`USAGE` in host/crates/store/src/sql.rs), with their query
plans. Both are read from the checkout, so running the script on an older
commit gives the figures before a change. See BENCHMARKS.md, "Claiming a run
with a long history".

    scripts/bench-run-history.py target/release/assay [FINISHED]
"""
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

assay, finished = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
repo = Path(__file__).resolve().parent.parent
with tempfile.TemporaryDirectory() as tmp:
    db = f"{tmp}/a.db"
    subprocess.run([assay, "--database-url", f"sqlite://{db}?mode=rwc", "tenant", "list"],
                   check=True, capture_output=True)
    c = sqlite3.connect(db)
    c.execute("PRAGMA foreign_keys=OFF")
    insert = ("INSERT INTO runs (id, tenant_id, dataset_id, dataset_version, target_type, "
              "target_id, scorer_ids, status, total_items, config, created_at, updated_at) "
              "VALUES (?, 'default', 'ds', 1, 'plugin', 'echo', '[]', ?, 10, '{}', ?, ?)")
    c.executemany(insert, [(f"done-{i}", "completed", i, i) for i in range(finished)])
    c.executemany(insert, [(f"pending-{i}", "pending", finished + i, finished + i) for i in range(5)])
    c.commit()
    c.execute("ANALYZE")

    src = (repo / "host/crates/store/src/sqlite/claim.rs").read_text()
    update = re.search(r'concat!\(\s*"(.*?)",\s*run_cols', src, re.S).group(1)
    choose = re.sub(r"\s+", " ", update.replace("\\\n", "").replace("\\", ""))
    choose = choose[choose.index("WITH active"):choose.rindex(")")]
    choose = (choose.replace("?1", "0").replace("?4", "0").replace("?5", "'[]'"))
    sql_rs = (repo / "host/crates/store/src/sql.rs").read_text()
    usage = re.search(r'pub const USAGE: &str = "(.*?)";', sql_rs, re.S).group(1)
    usage = re.sub(r"\s+", " ", usage.replace("\\\n", "").replace("\\", ""))
    usage = usage.replace("$1", "'default'").replace("AS BIGINT", "AS INTEGER")
    for name, sql in [("claim: choosing a run", choose), ("usage of a tenant", usage)]:
        plan = [row[3] for row in c.execute("EXPLAIN QUERY PLAN " + sql)]
        start = time.perf_counter()
        for _ in range(20):
            answer = c.execute(sql).fetchall()
        took = (time.perf_counter() - start) / 20 * 1000
        print(f"{name}: {took:.2f} ms with {finished} finished runs -> {answer}\n  plan: {plan}")
