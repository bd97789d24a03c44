-- name: archive_observations
-- Keep the rows about to be replaced.
INSERT INTO holdout_observation_history
SELECT o.*, clock_timestamp()
FROM holdout_observations o
JOIN unnest($2::smallint[], $3::smallint[]) AS k (channel_position, arm)
  ON o.channel_position = k.channel_position AND o.arm = k.arm
WHERE o.experiment_id = $1;

-- name: upsert_observations
INSERT INTO holdout_observations (
    experiment_id, channel_position, arm, units, conversions, sum, sum_squares,
    covariate_sum, covariate_sum_squares, cross_sum, spend, value_per_conversion)
SELECT $1, t.*
FROM unnest($2::smallint[], $3::smallint[], $4::bigint[], $5::bigint[], $6::float8[], $7::float8[],
            $8::float8[], $9::float8[], $10::float8[], $11::float8[], $12::float8[])
     AS t (channel_position, arm, units, conversions, sum, sum_squares,
           covariate_sum, covariate_sum_squares, cross_sum, spend, value_per_conversion)
ON CONFLICT (experiment_id, channel_position, arm) DO UPDATE SET
    units = EXCLUDED.units, conversions = EXCLUDED.conversions, sum = EXCLUDED.sum,
    sum_squares = EXCLUDED.sum_squares, covariate_sum = EXCLUDED.covariate_sum,
    covariate_sum_squares = EXCLUDED.covariate_sum_squares, cross_sum = EXCLUDED.cross_sum,
    spend = EXCLUDED.spend, value_per_conversion = EXCLUDED.value_per_conversion,
    recorded_at = clock_timestamp();
