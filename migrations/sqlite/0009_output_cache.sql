-- The output cache (see docs/caching.md): a run with `cache` on reuses the
-- output an earlier call of the same target (by content digest) produced
-- for the same config and item, instead of calling the target again.

-- A tenant's budget for cached outputs, in bytes (the `cache-bytes` tenant
-- limit): beyond it the least recently used entries are evicted.
ALTER TABLE tenants ADD COLUMN max_cache_bytes INTEGER NOT NULL DEFAULT 1073741824;

-- One successful target output per (tenant, key). `cache_key` is the hex
-- SHA-256 of the target's digest, its config and the item (the runner
-- computes it); `run_id` names the run whose call produced the output and
-- is kept after that run is deleted (it is provenance, not a reference).
CREATE TABLE output_cache (
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    cache_key       TEXT NOT NULL,
    target_id       TEXT NOT NULL,
    output          TEXT NOT NULL,
    target_metadata TEXT,
    trace_id        TEXT,
    latency         REAL NOT NULL,
    run_id          TEXT NOT NULL,
    size_bytes      INTEGER NOT NULL,
    hits            INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, cache_key)
);
-- Eviction reads a tenant's entries least recently used first.
CREATE INDEX output_cache_lru ON output_cache (tenant_id, last_used_at, cache_key);

-- Bytes of cached outputs per tenant, kept with every write so that a write
-- checks the budget without summing the table. Writes of one tenant lock
-- this row, so two processes cannot both fill the same room.
CREATE TABLE output_cache_usage (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants (id),
    bytes     INTEGER NOT NULL
);
