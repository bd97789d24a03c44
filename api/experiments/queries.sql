-- name: insert_experiment
INSERT INTO experiments (id, kind, name, status, design, salt, idempotency_key, request_hash)
VALUES ($1, $2, $3, 'draft', $4, $5, $6, $7)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING *;

-- name: insert_channels
INSERT INTO experiment_channels (experiment_id, position, name, holdout_fraction)
SELECT $1, t.position, t.name, t.holdout_fraction
FROM unnest($2::smallint[], $3::text[], $4::double precision[]) AS t (position, name, holdout_fraction);

-- name: delete_channels
DELETE FROM experiment_channels WHERE experiment_id = $1;

-- name: select_by_idempotency_key
SELECT * FROM experiments WHERE idempotency_key = $1;

-- name: select_experiment
SELECT * FROM experiments WHERE id = $1;

-- name: select_experiment_for_update
SELECT * FROM experiments WHERE id = $1 FOR UPDATE;

-- name: list_experiments
-- Newest first; the cursor is the (created_at, id) of the last row of the previous page.
SELECT * FROM experiments
WHERE ($1::text IS NULL OR kind = $1)
  AND ($2::text IS NULL OR status = $2)
  AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::uuid))
ORDER BY created_at DESC, id DESC
LIMIT $5;

-- name: update_experiment
UPDATE experiments
SET name = $2, status = $3, design = $4, updated_at = clock_timestamp(),
    started_at = CASE WHEN $3 = 'running' AND started_at IS NULL THEN clock_timestamp() ELSE started_at END,
    stopped_at = CASE WHEN $3 = 'stopped' AND stopped_at IS NULL THEN clock_timestamp() ELSE stopped_at END
WHERE id = $1
RETURNING *;

-- name: has_assignments
SELECT EXISTS (SELECT 1 FROM assignments WHERE experiment_id = $1);
