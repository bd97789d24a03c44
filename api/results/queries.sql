-- name: select_observations
-- Spend sent with the observations wins over spend set through PUT …/spend.
SELECT c.name AS channel, c.position AS channel_position, c.holdout_fraction, o.arm, o.units, o.conversions,
       o.sum, o.sum_squares, o.covariate_sum, o.covariate_sum_squares, o.cross_sum,
       coalesce(o.spend, s.spend) AS spend,
       CASE WHEN o.spend IS NOT NULL THEN o.value_per_conversion ELSE s.value_per_conversion END
           AS value_per_conversion
FROM experiment_channels c
LEFT JOIN holdout_observations o
  ON o.experiment_id = c.experiment_id AND o.channel_position = c.position
LEFT JOIN channel_spend s
  ON s.experiment_id = c.experiment_id AND s.channel_position = c.position
WHERE c.experiment_id = $1
ORDER BY c.position, o.arm;

-- name: select_channels_with_spend
SELECT c.name AS channel, c.position AS channel_position, c.holdout_fraction, s.spend, s.value_per_conversion
FROM experiment_channels c
LEFT JOIN channel_spend s ON s.experiment_id = c.experiment_id AND s.channel_position = c.position
WHERE c.experiment_id = $1
ORDER BY c.position;

-- name: outcome_shifts
-- One stored value and its covariate (NULL without one): the sums below are taken about them, which keeps
-- the variances free of cancellation when a metric's mean is large against its spread. Any stored row
-- serves; looking for one with a covariate read every outcome of an experiment that has none (75 ms for
-- 200,000). The first in key order: one probe of the primary key, where a bare LIMIT 1 could be a
-- sequential scan reading other experiments' rows first, and the same row, hence the same figures to the
-- last bit, at every read of the same data.
SELECT (SELECT value FROM holdout_outcomes WHERE experiment_id = $1 ORDER BY unit LIMIT 1) AS shift,
       (SELECT covariate FROM holdout_outcomes WHERE experiment_id = $1 ORDER BY unit LIMIT 1) AS covariate_shift;

-- name: plan_joins_without_nested_loops
-- Until the transaction ends, joins are hashed or merged, never nested loops. Right after a bulk load, and
-- until ANALYZE has run, the statistics of assignments and holdout_outcomes do not know the new
-- experiment: the planner expects one row on each side and picks a nested loop that rescans one side for
-- every row of the other, on `unit` as a join filter, quadratic in the experiment's units (21-37 s for
-- 20,000 units). A hash or merge join costs the same on fresh statistics and stays linear on stale ones.
-- Each execution is planned for its experiment (never the generic plan a prepared statement gets after
-- five runs, which expects an average experiment and scanned every experiment's rows for a small one).
-- Rows are grouped by hashing, never sorted first: there are two groups per channel, and on stale
-- statistics the planner expected one row and sorted all 200,000 joined rows on disk (a fifth of the read).
SET LOCAL enable_nestloop = off;
SET LOCAL enable_sort = off;
SET LOCAL plan_cache_mode = force_custom_plan;

-- name: aggregate_outcomes
-- Sufficient statistics per channel and arm from unit-level outcomes joined to their assignments, in one
-- pass that PostgreSQL can run in parallel (assignments preserved, outcomes hashed): `assigned` counts
-- every assigned unit, `units` those with an outcome. Sums are about $2 (outcome) and $3 (covariate).
-- Run after plan_joins_without_nested_loops, in the same transaction.
SELECT a.position, a.arm,
       count(*) AS assigned,
       count(o.value) AS units,
       sum(o.value - $2) AS sum,
       sum((o.value - $2) * (o.value - $2)) AS sum_squares,
       count(o.covariate) AS covariate_units,
       sum(o.covariate - $3) AS covariate_sum,
       sum((o.covariate - $3) * (o.covariate - $3)) AS covariate_sum_squares,
       sum((o.value - $2) * (o.covariate - $3)) AS cross_sum
FROM assignments AS a
LEFT JOIN holdout_outcomes AS o ON o.experiment_id = a.experiment_id AND o.unit = a.unit
WHERE a.experiment_id = $1
GROUP BY a.position, a.arm;

-- name: count_outcomes
-- All stored outcomes of the experiment; those not matched by any assignment were never assigned.
SELECT count(*) FROM holdout_outcomes WHERE experiment_id = $1;

-- name: propose_mixing_variance
-- The first look fixes τ²; a concurrent first look waits here and then keeps the stored value.
INSERT INTO sequential_mixing_variances (experiment_id, channel_position, mixing_variance)
VALUES ($1, $2, $3)
ON CONFLICT (experiment_id, channel_position) DO NOTHING;

-- name: select_mixing_variance
SELECT mixing_variance FROM sequential_mixing_variances WHERE experiment_id = $1 AND channel_position = $2;

-- name: select_earlier_looks
SELECT ci_low, ci_high, p_value
FROM sequential_looks
WHERE experiment_id = $1 AND channel_position = $2 AND alpha = $3 AND mixing_variance = $4
ORDER BY looked_at;

-- name: record_look
INSERT INTO sequential_looks
    (experiment_id, channel_position, alpha, mixing_variance, estimate, ci_low, ci_high, p_value)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT DO NOTHING;
