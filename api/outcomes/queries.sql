-- name: create_staging
-- One upload's rows with their line (CSV) or index (JSON) number, for naming repeats.
CREATE TEMPORARY TABLE outcome_staging (
    line      bigint NOT NULL,
    unit      text COLLATE "C" NOT NULL,
    value     double precision NOT NULL,
    covariate double precision
) ON COMMIT DROP;

-- name: analyze_staging
-- Fresh statistics on the staged rows, so the checks and the upsert below are planned for their size.
ANALYZE outcome_staging;

-- name: first_repeat
SELECT unit, min(line) AS first_line, max(line) AS last_line
FROM outcome_staging
GROUP BY unit
HAVING count(*) > 1
ORDER BY min(line)
LIMIT 1;

-- name: plan_joins_without_nested_loops
-- Until the transaction ends, joins are hashed or merged: right after a bulk load the statistics of
-- assignments may not know the experiment yet (one row expected), and a nested loop on `unit` as a join
-- filter would then be quadratic in its units. See api/results/queries.sql.
SET LOCAL enable_nestloop = off;

-- name: unassigned
-- $2: how many example ids to return.
SELECT count(*) AS units, (array_agg(s.unit ORDER BY s.unit))[1:$2] AS examples
FROM outcome_staging AS s
WHERE NOT EXISTS (SELECT 1 FROM assignments AS a WHERE a.experiment_id = $1 AND a.unit = s.unit);

-- name: upsert_outcomes
-- `xmax = 0` tells a fresh insert from an update of an existing row.
WITH written AS (
    INSERT INTO holdout_outcomes AS o (experiment_id, unit, value, covariate, recorded_at)
    SELECT $1, unit, value, covariate, now() FROM outcome_staging
    ON CONFLICT (experiment_id, unit) DO UPDATE
        SET value = EXCLUDED.value, covariate = EXCLUDED.covariate, recorded_at = EXCLUDED.recorded_at
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) FILTER (WHERE NOT inserted) AS replaced FROM written;

-- name: upsert_spend
INSERT INTO channel_spend (experiment_id, channel_position, spend, value_per_conversion)
SELECT $1, t.* FROM unnest($2::smallint[], $3::float8[], $4::float8[]) AS t (channel_position, spend, value_per_conversion)
ON CONFLICT (experiment_id, channel_position) DO UPDATE
    SET spend = EXCLUDED.spend, value_per_conversion = EXCLUDED.value_per_conversion, recorded_at = clock_timestamp();

-- name: statistics_outdated
-- Whether the $1 rows an upload just wrote are a tenth of the rows the statistics last counted or more
-- (autovacuum's default threshold), or the table was never analysed.
SELECT reltuples < 0 OR $1 >= 0.1 * reltuples FROM pg_class WHERE oid = 'holdout_outcomes'::regclass;

-- name: vacuum_outcomes
-- Outside a transaction: statistics, hint bits and visibility of the rows a bulk load wrote.
VACUUM (ANALYZE, SKIP_LOCKED, INDEX_CLEANUP OFF) holdout_outcomes;
