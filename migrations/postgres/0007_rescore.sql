-- A run that re-scores the stored target outputs of another run (its
-- parent) names it here; NULL for a run that called its target.
ALTER TABLE runs ADD COLUMN parent_run_id TEXT;
CREATE INDEX runs_by_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
