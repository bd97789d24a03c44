-- Holdout observations: sufficient statistics per experiment, channel and arm (0 treatment, 1 holdout).
-- A nightly job may re-send totals: the current row is replaced and the one it replaces is kept in
-- holdout_observation_history.
CREATE TABLE holdout_observations (
    experiment_id         uuid NOT NULL,
    channel_position      smallint NOT NULL,
    arm                   smallint NOT NULL CHECK (arm IN (0, 1)),
    units                 bigint NOT NULL CHECK (units >= 0),
    conversions           bigint CHECK (conversions >= 0 AND conversions <= units),
    sum                   double precision,
    sum_squares           double precision CHECK (sum_squares >= 0),
    covariate_sum         double precision,
    covariate_sum_squares double precision CHECK (covariate_sum_squares >= 0),
    cross_sum             double precision,
    spend                 double precision CHECK (spend >= 0),
    value_per_conversion  double precision CHECK (value_per_conversion > 0),
    recorded_at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (experiment_id, channel_position, arm),
    FOREIGN KEY (experiment_id, channel_position)
        REFERENCES experiment_channels (experiment_id, position) ON DELETE CASCADE
);

CREATE TABLE holdout_observation_history (
    LIKE holdout_observations,
    superseded_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX holdout_observation_history_idx
    ON holdout_observation_history (experiment_id, channel_position, arm, superseded_at);

-- The mixing variance of each channel's mixture SPRT, fixed at the first sequential look.
CREATE TABLE sequential_mixing_variances (
    experiment_id    uuid NOT NULL,
    channel_position smallint NOT NULL,
    mixing_variance  double precision NOT NULL CHECK (mixing_variance > 0),
    fixed_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (experiment_id, channel_position),
    FOREIGN KEY (experiment_id, channel_position)
        REFERENCES experiment_channels (experiment_id, position) ON DELETE CASCADE
);
