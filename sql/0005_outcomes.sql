-- Unit-level outcomes of holdout experiments, joined to `assignments` on (experiment_id, unit) when
-- results are computed: the primary key here and the leading columns of the assignments key match, so
-- the join is a merge of two index-ordered scans. A unit's outcome is replaced when it is re-sent.
-- Outcomes of units that were never assigned are kept (and reported), never silently dropped.
-- No foreign key, as for assignments: the service checks the experiment under a row lock, and a
-- per-row check would slow bulk loads of millions of rows.
CREATE TABLE holdout_outcomes (
    experiment_id uuid NOT NULL,
    unit          text COLLATE "C" NOT NULL CHECK (octet_length(unit) BETWEEN 1 AND 256),
    value         double precision NOT NULL,
    covariate     double precision,
    recorded_at   timestamptz NOT NULL,
    PRIMARY KEY (experiment_id, unit)
);

-- Money spent per channel on its treated arm (and, for conversion metrics, the value of one
-- conversion), for iROAS and cost per incremental conversion when results come from unit-level
-- outcomes. Spend sent with aggregate observations takes precedence over this.
CREATE TABLE channel_spend (
    experiment_id        uuid NOT NULL,
    channel_position     smallint NOT NULL,
    spend                double precision NOT NULL CHECK (spend >= 0),
    value_per_conversion double precision CHECK (value_per_conversion > 0),
    recorded_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (experiment_id, channel_position),
    FOREIGN KEY (experiment_id, channel_position)
        REFERENCES experiment_channels (experiment_id, position) ON DELETE CASCADE
);
