-- One run, several processes: a run's item positions are handed out in
-- chunks, each held by one claim under its own lease, so every process with
-- free slots can execute part of the same run (see docs/runs.md).
--
-- `claim_number` keeps counting every claim of the run, now including the
-- claims of processes that help execute it; `lease_claim` is the number of
-- the claim that holds the run's own lease (the process that finalizes it).
-- The chunk cursor is the first position not handed out yet; `chunk_end`
-- (the dataset's next position, fixed by the first chunk claim) where the
-- handing out stops. `exclusive`: the lease holder executes the run alone
-- (`assay run` builds its report from the items it executes itself).
ALTER TABLE runs ADD COLUMN lease_claim INTEGER NOT NULL DEFAULT 0;
UPDATE runs SET lease_claim = claim_number;
ALTER TABLE runs ADD COLUMN chunk_cursor INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN chunk_end INTEGER;
ALTER TABLE runs ADD COLUMN exclusive INTEGER NOT NULL DEFAULT 0;

-- Positions [first_position, end_position) of a run, held by the claim
-- (owner, claim_number) until lease_expires_at (milliseconds since the
-- epoch); `done` once every item in it has its result.
CREATE TABLE run_chunks (
    run_id           TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    first_position   INTEGER NOT NULL,
    end_position     INTEGER NOT NULL,
    owner            TEXT NOT NULL,
    claim_number     INTEGER NOT NULL,
    lease_expires_at INTEGER NOT NULL,
    done             INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, first_position)
);
CREATE INDEX run_chunks_unfinished ON run_chunks (run_id, lease_expires_at) WHERE done = 0;
-- The chunks one claim holds (the write fence of a helper's results).
CREATE INDEX run_chunks_held ON run_chunks (run_id, owner, claim_number) WHERE done = 0;
