-- name: insert_experiment
-- $8: the API key that creates it (also its last changer). An `Idempotency-Key` already used by that key
-- in workspace $12 inserts nothing (and returns no row). $9: a holdout experiment's assignment rule; $10, $11:
-- its stated actual period.
INSERT INTO experiments (id, kind, name, status, design, salt, idempotency_key, request_hash, created_by, updated_by,
                         assignment_rule, actual_start, actual_end, workspace)
VALUES ($1, $2, $3, 'draft', $4, $5, $6, $7, $8, $8, $9, $10, $11, $12)
ON CONFLICT (workspace, created_by, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING *;

-- name: insert_channels
INSERT INTO experiment_channels (experiment_id, position, name, holdout_fraction)
SELECT $1, t.position, t.name, t.holdout_fraction
FROM unnest($2::smallint[], $3::text[], $4::double precision[]) AS t (position, name, holdout_fraction);

-- name: select_channels
SELECT position, name, holdout_fraction FROM experiment_channels WHERE experiment_id = $1 ORDER BY position;

-- name: delete_channels
DELETE FROM experiment_channels WHERE experiment_id = $1;

-- name: select_by_idempotency_key
SELECT * FROM experiments WHERE created_by IS NOT DISTINCT FROM $1 AND idempotency_key = $2 AND workspace = $3;

-- name: select_experiment
-- In workspace $2 (any when NULL): another workspace's experiment is not found.
SELECT * FROM experiments WHERE id = $1 AND ($2::text IS NULL OR workspace = $2);

-- name: select_experiment_for_share
-- Locks the experiment against a concurrent status, design or channel change while data is written to it.
SELECT * FROM experiments WHERE id = $1 AND ($2::text IS NULL OR workspace = $2) FOR SHARE;

-- name: select_experiment_for_update
SELECT * FROM experiments WHERE id = $1 AND ($2::text IS NULL OR workspace = $2) FOR UPDATE;

-- name: list_experiments
-- Newest first, in workspace $6 (every one when NULL); the cursor is the (created_at, id) of the last row of
-- the previous page.
SELECT * FROM experiments
WHERE ($6::text IS NULL OR workspace = $6)
  AND ($1::text IS NULL OR kind = $1)
  AND ($2::text IS NULL OR status = $2)
  AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::uuid))
ORDER BY created_at DESC, id DESC
LIMIT $5;

-- name: update_experiment
UPDATE experiments
SET name = $2, status = $3, design = $4, updated_at = clock_timestamp(), updated_by = $5,
    started_at = CASE WHEN $3 = 'running' AND started_at IS NULL THEN clock_timestamp() ELSE started_at END,
    stopped_at = CASE WHEN $3 = 'stopped' AND stopped_at IS NULL THEN clock_timestamp() ELSE stopped_at END
WHERE id = $1
RETURNING *;

-- name: update_actual_period
-- A holdout test's actual period after a change: $2, $3 as stated (or as stored); a missing start is the day
-- it started running, a missing end the day it stopped (never before the start), in UTC.
UPDATE experiments
SET actual_start = CASE WHEN $2::date IS NULL THEN (started_at AT TIME ZONE 'UTC')::date ELSE $2::date END,
    actual_end = CASE
        WHEN $3::date IS NOT NULL THEN $3::date
        WHEN status = 'stopped' THEN greatest(
            (stopped_at AT TIME ZONE 'UTC')::date, COALESCE($2::date, (started_at AT TIME ZONE 'UTC')::date)
        )
    END
WHERE id = $1
RETURNING *;

-- name: has_assignments
SELECT EXISTS (SELECT 1 FROM assignments WHERE experiment_id = $1);

-- name: lock_results_data
-- Serialises the writers of one experiment's results data (observations, outcomes, deletion): an experiment
-- takes one kind or the other, two outcome uploads of the same units must not deadlock, and a deletion
-- finds no upload half-way.
SELECT pg_advisory_xact_lock(hashtextextended('counterfact:results-data:' || $1::uuid::text, 0));

-- name: has_observations
-- An experiment's results come from its observations or its outcomes, never both: each upload asks for
-- the other kind under lock_results_data.
SELECT EXISTS (SELECT 1 FROM holdout_observations WHERE experiment_id = $1);

-- name: has_outcomes
-- The experiment's first outcome in key order (a row, or none): one probe of the primary key. EXISTS let the
-- planner expect a match within the first rows of a sequential scan whenever the statistics know the
-- experiment as a large share of the table, but its rows lie together where its load put them: after a bulk
-- load at the table's end, so the scan read every other experiment's rows first (75 ms past 1,000,000).
SELECT true FROM holdout_outcomes WHERE experiment_id = $1 ORDER BY unit LIMIT 1;

-- name: lock_geo_dataset_schedule
-- Serialises the collision check and the write that follows it for one dataset (two experiments
-- created or started at once cannot both miss each other); a dataset's deletion takes it too.
SELECT pg_advisory_xact_lock(hashtextextended('geo-schedule:' || $1::uuid::text, 0));

-- name: select_colliding_geo_experiment
-- A running geo experiment (other than $1) on dataset $2 whose test period (and cool-down) overlaps [$3, $4] and which
-- uses one of the markets $5 (as a treatment market or in a matched pair); the earliest, with the markets shared.
SELECT e.id, e.name, e.design -> 'test_period' AS test_period,
       ARRAY(
           SELECT DISTINCT m FROM (
               SELECT jsonb_array_elements_text(e.design -> 'treatment_markets') AS m
               UNION ALL
               SELECT g #>> '{}' FROM jsonb_path_query(e.design, '$.pairs[*][*]') AS g
           ) used
           WHERE m = ANY($5::text[])
           ORDER BY m
       ) AS shared_markets
FROM experiments e
WHERE e.kind = 'geo' AND e.status = 'running' AND e.id <> $1
  AND e.design ->> 'dataset_id' = $2::uuid::text
  AND (e.design -> 'test_period' ->> 'start')::date <= $4
  AND COALESCE((e.design -> 'cooldown_period' ->> 'end')::date, (e.design -> 'test_period' ->> 'end')::date) >= $3
  AND (
      EXISTS (SELECT 1 FROM jsonb_array_elements_text(e.design -> 'treatment_markets') m WHERE m = ANY($5::text[]))
      OR EXISTS (SELECT 1 FROM jsonb_path_query(e.design, '$.pairs[*][*]') g WHERE g #>> '{}' = ANY($5::text[]))
  )
ORDER BY e.started_at, e.id
LIMIT 1;
