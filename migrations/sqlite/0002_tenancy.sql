-- Tenancy: API keys, the shared plugin namespace, and the limits an
-- operator sets per tenant (see docs/tenancy.md).

-- Per-tenant limits beyond the first three (items in flight, active runs,
-- items per dataset). Defaults fit network-bound work.
ALTER TABLE tenants ADD COLUMN max_queued_runs  INTEGER NOT NULL DEFAULT 1000;
ALTER TABLE tenants ADD COLUMN max_datasets     INTEGER NOT NULL DEFAULT 1000;
ALTER TABLE tenants ADD COLUMN max_stored_bytes INTEGER NOT NULL DEFAULT 10737418240;
ALTER TABLE tenants ADD COLUMN max_plugins      INTEGER NOT NULL DEFAULT 100;
ALTER TABLE tenants ADD COLUMN max_plugin_bytes INTEGER NOT NULL DEFAULT 1073741824;
-- 64 items in flight was the old default: too few for runs against a slow
-- service. Tenants still at it move to the new default.
UPDATE tenants SET max_concurrency = 256 WHERE max_concurrency = 64;

-- Bytes of item JSON a dataset stores, all versions included (history is
-- kept, so it only grows until the dataset is deleted).
ALTER TABLE datasets ADD COLUMN stored_bytes INTEGER NOT NULL DEFAULT 0;
UPDATE datasets SET stored_bytes = (
    SELECT COALESCE(SUM(LENGTH(CAST(iv.input AS BLOB))
        + COALESCE(LENGTH(CAST(iv.expected_output AS BLOB)), 0)
        + COALESCE(LENGTH(CAST(iv.context AS BLOB)), 0)), 0)
    FROM item_versions iv WHERE iv.dataset_id = datasets.id
);

-- The namespace of shared plugins (shipped, or registered by the operator
-- with `assay plugin add --shared`): visible to every tenant, writable by
-- none. `@` cannot appear in a tenant name, so no tenant can be called so.
INSERT INTO tenants (id, max_concurrency, max_active_runs, max_items_per_dataset, created_at)
VALUES ('@shared', 0, 0, 0, CAST(strftime('%s', 'now') AS INTEGER) * 1000);

-- API keys: only the SHA-256 of the token is stored; `prefix` is the start
-- of the token, shown in listings so a user can tell keys apart.
CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    name       TEXT,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    prefix     TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, created_at, id);
