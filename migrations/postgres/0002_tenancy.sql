-- Tenancy: API keys, the shared plugin namespace, and the limits an
-- operator sets per tenant (same as migrations/sqlite/0002_tenancy.sql).

ALTER TABLE tenants ADD COLUMN max_queued_runs  BIGINT NOT NULL DEFAULT 1000;
ALTER TABLE tenants ADD COLUMN max_datasets     BIGINT NOT NULL DEFAULT 1000;
ALTER TABLE tenants ADD COLUMN max_stored_bytes BIGINT NOT NULL DEFAULT 10737418240;
ALTER TABLE tenants ADD COLUMN max_plugins      BIGINT NOT NULL DEFAULT 100;
ALTER TABLE tenants ADD COLUMN max_plugin_bytes BIGINT NOT NULL DEFAULT 1073741824;
UPDATE tenants SET max_concurrency = 256 WHERE max_concurrency = 64;

ALTER TABLE datasets ADD COLUMN stored_bytes BIGINT NOT NULL DEFAULT 0;
UPDATE datasets SET stored_bytes = (
    SELECT COALESCE(SUM(octet_length(iv.input::text)
        + COALESCE(octet_length(iv.expected_output::text), 0)
        + COALESCE(octet_length(iv.context::text), 0)), 0)
    FROM item_versions iv WHERE iv.dataset_id = datasets.id
);

INSERT INTO tenants (id, max_concurrency, max_active_runs, max_items_per_dataset)
VALUES ('@shared', 0, 0, 0);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    name       TEXT,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    prefix     TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, created_at, id);
