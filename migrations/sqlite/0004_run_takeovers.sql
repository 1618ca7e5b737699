-- How many times another process took a run over after its lease expired
-- with its owner gone (a crash, a kill, a stall): a run that crashes its
-- process would otherwise be resumed on every restart, forever.
ALTER TABLE runs ADD COLUMN takeovers INTEGER NOT NULL DEFAULT 0;
