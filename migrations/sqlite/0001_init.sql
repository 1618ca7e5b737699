-- assay schema, SQLite flavour. Timestamps are INTEGER milliseconds since the
-- Unix epoch (UTC); JSON is TEXT; booleans are INTEGER 0/1.

CREATE TABLE tenants (
    id                    TEXT PRIMARY KEY,
    max_concurrency       INTEGER NOT NULL,
    max_active_runs       INTEGER NOT NULL,
    max_items_per_dataset INTEGER NOT NULL,
    created_at            INTEGER NOT NULL
);
INSERT INTO tenants (id, max_concurrency, max_active_runs, max_items_per_dataset, created_at)
VALUES ('default', 64, 16, 10000000, CAST(strftime('%s', 'now') AS INTEGER) * 1000);

CREATE TABLE datasets (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    name          TEXT NOT NULL,
    description   TEXT,
    metadata      TEXT,
    input_schema  TEXT,
    output_schema TEXT,
    version       INTEGER NOT NULL DEFAULT 0,
    item_count    INTEGER NOT NULL DEFAULT 0,
    next_position INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE INDEX datasets_by_tenant ON datasets (tenant_id, created_at DESC, id DESC);

-- One row per mutation of a dataset (a bulk operation is one row).
CREATE TABLE dataset_versions (
    dataset_id TEXT NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    change     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (dataset_id, version)
);

-- Items as slowly changing dimension (type 2) rows: one row per version of
-- an item, valid for dataset versions [valid_from, valid_to). The live row has
-- valid_to NULL; a deleted item ends with a tombstone row (is_deleted = 1).
CREATE TABLE item_versions (
    item_id         TEXT NOT NULL,
    version_number  INTEGER NOT NULL,
    dataset_id      TEXT NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    position        INTEGER NOT NULL,
    valid_from      INTEGER NOT NULL,
    valid_to        INTEGER,
    is_deleted      INTEGER NOT NULL DEFAULT 0,
    input           TEXT NOT NULL,
    expected_output TEXT,
    context         TEXT,
    item_created_at INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (item_id, version_number)
);
CREATE INDEX item_versions_by_position ON item_versions (dataset_id, position, valid_from);
CREATE INDEX item_versions_live ON item_versions (dataset_id, position)
    WHERE valid_to IS NULL AND is_deleted = 0;

CREATE TABLE runs (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants (id),
    dataset_id       TEXT NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    dataset_version  INTEGER NOT NULL,
    target_type      TEXT NOT NULL,
    target_id        TEXT NOT NULL,
    scorer_ids       TEXT NOT NULL,
    status           TEXT NOT NULL
        CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    total_items      INTEGER NOT NULL,
    succeeded_count  INTEGER NOT NULL DEFAULT 0,
    failed_count     INTEGER NOT NULL DEFAULT 0,
    skipped_count    INTEGER NOT NULL DEFAULT 0,
    config           TEXT NOT NULL,
    error            TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    started_at       INTEGER,
    completed_at     INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX runs_by_tenant ON runs (tenant_id, created_at DESC, id DESC);
CREATE INDEX runs_by_dataset ON runs (dataset_id, created_at DESC, id DESC);
CREATE INDEX runs_active ON runs (status, created_at, id)
    WHERE status IN ('pending', 'running');

-- One row per (run, item): the idempotency key of a result. seq orders rows
-- by write (for streaming "results after seq N").
CREATE TABLE results (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL,
    run_id          TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    item_id         TEXT NOT NULL,
    item_index      INTEGER NOT NULL,
    item_version    INTEGER NOT NULL,
    input           TEXT NOT NULL,
    output          TEXT,
    expected_output TEXT,
    latency         REAL NOT NULL,
    error           TEXT,
    error_kind      TEXT,
    started_at      INTEGER NOT NULL,
    completed_at    INTEGER NOT NULL,
    retry_count     INTEGER NOT NULL,
    trace_id        TEXT,
    logs            TEXT,
    created_at      INTEGER NOT NULL,
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
    ord         INTEGER NOT NULL,
    scorer_name TEXT NOT NULL,
    score       REAL,
    reason      TEXT,
    error       TEXT,
    metadata    TEXT,
    PRIMARY KEY (run_id, item_id, scorer_id),
    FOREIGN KEY (run_id) REFERENCES runs (id) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE TABLE plugins (
    tenant_id        TEXT NOT NULL REFERENCES tenants (id),
    id               TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('scorer', 'target')),
    name             TEXT NOT NULL,
    description      TEXT NOT NULL,
    digest           TEXT NOT NULL,
    contract_version TEXT NOT NULL,
    size             INTEGER NOT NULL,
    bytes            BLOB NOT NULL,
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
