-- Fair share: a tenant's weight divides a process's item slots (and orders
-- the runs processes claim) in proportion between tenants with work.
ALTER TABLE tenants ADD COLUMN weight INTEGER NOT NULL DEFAULT 1
    CHECK (weight BETWEEN 1 AND 1000);
