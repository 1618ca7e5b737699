-- Repeated trials (see docs/runs.md, "Repeats and significance"): a run
-- executes each item `repeats` times. Each execution is a trial, numbered
-- from 0 in `trial` on its result and on the result's scores, and a result
-- is unique per (run, item, trial): the idempotency key of a write. A run
-- without repeats has one trial, 0, per item, exactly as before.
ALTER TABLE runs ADD COLUMN repeats BIGINT NOT NULL DEFAULT 1 CHECK (repeats >= 1);

ALTER TABLE results ADD COLUMN trial BIGINT NOT NULL DEFAULT 0;
ALTER TABLE results DROP CONSTRAINT results_run_id_item_id_key;
ALTER TABLE results ADD CONSTRAINT results_run_id_item_id_trial_key
    UNIQUE (run_id, item_id, trial);
DROP INDEX results_by_index;
CREATE INDEX results_by_index ON results (run_id, item_index, trial);

ALTER TABLE scores ADD COLUMN trial BIGINT NOT NULL DEFAULT 0;
ALTER TABLE scores DROP CONSTRAINT scores_pkey;
ALTER TABLE scores ADD PRIMARY KEY (run_id, item_id, trial, scorer_id);
