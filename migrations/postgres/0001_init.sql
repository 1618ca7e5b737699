-- assay schema, PostgreSQL flavour (same tables as migrations/sqlite).

CREATE TABLE tenants (
    id                    TEXT PRIMARY KEY,
    max_concurrency       BIGINT NOT NULL,
    max_active_runs       BIGINT NOT NULL,
    max_items_per_dataset BIGINT NOT NULL,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO tenants (id, max_concurrency, max_active_runs, max_items_per_dataset)
VALUES ('default', 64, 16, 10000000);

CREATE TABLE datasets (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    name          TEXT NOT NULL,
    description   TEXT,
    metadata      JSONB,
    input_schema  JSONB,
    output_schema JSONB,
    version       BIGINT NOT NULL DEFAULT 0,
    item_count    BIGINT NOT NULL DEFAULT 0,
    next_position BIGINT NOT NULL DEFAULT 0,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE INDEX datasets_by_tenant ON datasets (tenant_id, created_at DESC, id DESC);

-- One row per mutation of a dataset (a bulk operation is one row).
CREATE TABLE dataset_versions (
    dataset_id TEXT NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    version    BIGINT NOT NULL,
    change     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (dataset_id, version)
);

-- Items as slowly changing dimension (type 2) rows: one row per version of
-- an item, valid for dataset versions [valid_from, valid_to). The live row has
-- valid_to NULL; a deleted item ends with a tombstone row (is_deleted).
CREATE TABLE item_versions (
    item_id         TEXT NOT NULL,
    version_number  BIGINT NOT NULL,
    dataset_id      TEXT NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    position        BIGINT NOT NULL,
    valid_from      BIGINT NOT NULL,
    valid_to        BIGINT,
    is_deleted      BOOLEAN NOT NULL DEFAULT FALSE,
    input           JSONB NOT NULL,
    expected_output JSONB,
    context         JSONB,
    item_created_at TIMESTAMPTZ NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (item_id, version_number)
);
CREATE INDEX item_versions_by_position ON item_versions (dataset_id, position, valid_from);
CREATE INDEX item_versions_live ON item_versions (dataset_id, position)
    WHERE valid_to IS NULL AND NOT is_deleted;

CREATE TABLE runs (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants (id),
    dataset_id       TEXT NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    dataset_version  BIGINT NOT NULL,
    target_type      TEXT NOT NULL,
    target_id        TEXT NOT NULL,
    scorer_ids       JSONB NOT NULL,
    status           TEXT NOT NULL
        CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    total_items      BIGINT NOT NULL,
    succeeded_count  BIGINT NOT NULL DEFAULT 0,
    failed_count     BIGINT NOT NULL DEFAULT 0,
    skipped_count    BIGINT NOT NULL DEFAULT 0,
    config           JSONB NOT NULL,
    error            TEXT,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    lease_owner      TEXT,
    lease_expires_at TIMESTAMPTZ,
    started_at       TIMESTAMPTZ,
    completed_at     TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX runs_by_tenant ON runs (tenant_id, created_at DESC, id DESC);
CREATE INDEX runs_by_dataset ON runs (dataset_id, created_at DESC, id DESC);
CREATE INDEX runs_active ON runs (status, created_at, id)
    WHERE status IN ('pending', 'running');

-- One row per (run, item): the idempotency key of a result. seq orders rows
-- by write (for streaming "results after seq N"); write_results locks the run
-- row first, so the results of one run commit in seq order.
CREATE TABLE results (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              TEXT NOT NULL,
    run_id          TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    item_id         TEXT NOT NULL,
    item_index      BIGINT NOT NULL,
    item_version    BIGINT NOT NULL,
    input           JSONB NOT NULL,
    output          JSONB,
    expected_output JSONB,
    latency         DOUBLE PRECISION NOT NULL,
    error           TEXT,
    error_kind      TEXT,
    started_at      TIMESTAMPTZ NOT NULL,
    completed_at    TIMESTAMPTZ NOT NULL,
    retry_count     BIGINT NOT NULL,
    trace_id        TEXT,
    logs            JSONB,
    created_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (run_id, item_id)
);
CREATE INDEX results_by_index ON results (run_id, item_index);
CREATE INDEX results_by_seq ON results (run_id, seq);

-- Scores are written only with their result, in the same transaction. They
-- reference the run, not the result: a foreign key into the large, growing
-- results table would make PostgreSQL check every score against a plan cached
-- while that table was small (a sequential scan per score).
CREATE TABLE scores (
    run_id      TEXT NOT NULL,
    item_id     TEXT NOT NULL,
    scorer_id   TEXT NOT NULL,
    ord         BIGINT NOT NULL,
    scorer_name TEXT NOT NULL,
    score       DOUBLE PRECISION,
    reason      TEXT,
    error       TEXT,
    metadata    JSONB,
    PRIMARY KEY (run_id, item_id, scorer_id),
    FOREIGN KEY (run_id) REFERENCES runs (id) ON DELETE CASCADE
);

CREATE TABLE plugins (
    tenant_id        TEXT NOT NULL REFERENCES tenants (id),
    id               TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('scorer', 'target')),
    name             TEXT NOT NULL,
    description      TEXT NOT NULL,
    digest           TEXT NOT NULL,
    contract_version TEXT NOT NULL,
    size             BIGINT NOT NULL,
    bytes            BYTEA NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
