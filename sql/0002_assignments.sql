-- Holdout assignments: one row per (experiment, unit, channel), written once and never updated.
-- The key leads with (experiment_id, unit) so that one unit's arms are one index range, and so that
-- unit-level outcomes join to assignments on (experiment_id, unit) through the same index. `arm` is
-- carried in the index (INCLUDE) so the per-channel counts of the summary can be index-only scans.
-- `unit` sorts bytewise (COLLATE "C"): cheaper index maintenance and a locale-independent order.
-- No foreign keys: the service is the only writer and checks the experiment under a row lock; a
-- per-row foreign-key check would double the cost of bulk loads of millions of rows.
CREATE TABLE assignments (
    experiment_id uuid NOT NULL,
    unit          text COLLATE "C" NOT NULL CHECK (octet_length(unit) BETWEEN 1 AND 256),
    position      smallint NOT NULL,
    arm           smallint NOT NULL CHECK (arm IN (0, 1)),  -- 0 treatment, 1 holdout
    assigned_at   timestamptz NOT NULL,
    PRIMARY KEY (experiment_id, unit, position) INCLUDE (arm)
);
