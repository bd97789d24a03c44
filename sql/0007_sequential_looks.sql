-- Each sequential look's own confidence-sequence bounds and always-valid p-value, per channel, at
-- the confidence level and mixing variance it used. Later looks at the same level combine with them:
-- the running intersection of the bounds and the running minimum of the p-value (stats.sequential).
-- A look identical to one already stored (the same data looked at twice) is stored once.
CREATE TABLE sequential_looks (
    experiment_id    uuid NOT NULL,
    channel_position smallint NOT NULL,
    alpha            double precision NOT NULL CHECK (alpha > 0 AND alpha < 1),
    mixing_variance  double precision NOT NULL CHECK (mixing_variance > 0),
    estimate         double precision NOT NULL,
    ci_low           double precision,
    ci_high          double precision,
    p_value          double precision,
    looked_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    FOREIGN KEY (experiment_id, channel_position)
        REFERENCES experiment_channels (experiment_id, position) ON DELETE CASCADE
);
CREATE UNIQUE INDEX sequential_looks_identical_idx ON sequential_looks
    (experiment_id, channel_position, alpha, mixing_variance, estimate, ci_low, ci_high, p_value) NULLS NOT DISTINCT;
