-- name: select_observations
SELECT c.name AS channel, c.position AS channel_position, c.holdout_fraction, o.arm, o.units, o.conversions,
       o.sum, o.sum_squares, o.covariate_sum, o.covariate_sum_squares, o.cross_sum, o.spend,
       o.value_per_conversion
FROM experiment_channels c
LEFT JOIN holdout_observations o
  ON o.experiment_id = c.experiment_id AND o.channel_position = c.position
WHERE c.experiment_id = $1
ORDER BY c.position, o.arm;

-- name: fix_mixing_variance
-- The first look fixes τ²; later looks read the stored value.
WITH inserted AS (
    INSERT INTO sequential_mixing_variances (experiment_id, channel_position, mixing_variance)
    VALUES ($1, $2, $3)
    ON CONFLICT (experiment_id, channel_position) DO NOTHING
    RETURNING mixing_variance
)
SELECT mixing_variance FROM inserted
UNION ALL
SELECT mixing_variance FROM sequential_mixing_variances WHERE experiment_id = $1 AND channel_position = $2
LIMIT 1;
