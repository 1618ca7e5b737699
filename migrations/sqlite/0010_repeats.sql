-- Repeated trials (see docs/runs.md, "Repeats and significance"): a run
-- executes each item `repeats` times. Each execution is a trial, numbered
-- from 0 in `trial` on its result and on the result's scores, and a result
-- is unique per (run, item, trial): the idempotency key of a write. A run
-- without repeats has one trial, 0, per item, exactly as before.
ALTER TABLE runs ADD COLUMN repeats INTEGER NOT NULL DEFAULT 1 CHECK (repeats >= 1);

-- SQLite cannot change a table's UNIQUE constraint or primary key in place:
-- both tables are rebuilt with the trial in their key (seq values are kept,
-- and the rename carries the AUTOINCREMENT counter over).
CREATE TABLE results_with_trials (
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
    target_metadata TEXT,
    trial           INTEGER NOT NULL DEFAULT 0,
    UNIQUE (run_id, item_id, trial)
);
INSERT INTO results_with_trials (seq, id, run_id, item_id, item_index, item_version, input,
    output, expected_output, latency, error, error_kind, started_at, completed_at, retry_count,
    trace_id, logs, created_at, target_metadata, trial)
SELECT seq, id, run_id, item_id, item_index, item_version, input, output, expected_output,
    latency, error, error_kind, started_at, completed_at, retry_count, trace_id, logs,
    created_at, target_metadata, 0
FROM results;
DROP TABLE results;
ALTER TABLE results_with_trials RENAME TO results;
CREATE INDEX results_by_index ON results (run_id, item_index, trial);
CREATE INDEX results_by_seq ON results (run_id, seq);

CREATE TABLE scores_with_trials (
    run_id      TEXT NOT NULL,
    item_id     TEXT NOT NULL,
    trial       INTEGER NOT NULL DEFAULT 0,
    scorer_id   TEXT NOT NULL,
    ord         INTEGER NOT NULL,
    scorer_name TEXT NOT NULL,
    score       REAL,
    reason      TEXT,
    error       TEXT,
    metadata    TEXT,
    PRIMARY KEY (run_id, item_id, trial, scorer_id),
    FOREIGN KEY (run_id) REFERENCES runs (id) ON DELETE CASCADE
) WITHOUT ROWID;
INSERT INTO scores_with_trials (run_id, item_id, trial, scorer_id, ord, scorer_name, score,
    reason, error, metadata)
SELECT run_id, item_id, 0, scorer_id, ord, scorer_name, score, reason, error, metadata
FROM scores;
DROP TABLE scores;
ALTER TABLE scores_with_trials RENAME TO scores;
