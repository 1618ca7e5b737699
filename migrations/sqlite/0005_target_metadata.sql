-- What a target reported about its call (token usage, model, latency), as
-- JSON text; plugins built against contract 0.1 never report it.
ALTER TABLE results ADD COLUMN target_metadata TEXT;
