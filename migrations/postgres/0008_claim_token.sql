-- Which claim of a run holds its lease: every claim increments it, and every
-- fenced statement (result writes, lease renewals, release, finish) compares
-- it as well as the owner. A process that claims its own run again after the
-- lease lapsed (a slow plugin load, lock contention) gets a new number, so a
-- write of the earlier execution is refused instead of passing as its own.
ALTER TABLE runs ADD COLUMN claim_number BIGINT NOT NULL DEFAULT 0;
