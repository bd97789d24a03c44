-- name: insert_event
-- $7: the workspace of the request that made the change (its subject's).
INSERT INTO audit_events (subject_kind, subject_id, action, key_id, key_name, details, workspace)
VALUES ($1, $2, $3, $4, $5, $6, $7);

-- name: list_events
-- Oldest first, in workspace $5 (any when NULL); the cursor is the id of the last event of the previous page.
SELECT * FROM audit_events
WHERE subject_kind = $1 AND subject_id = $2 AND id > $3 AND ($5::text IS NULL OR workspace = $5)
ORDER BY id
LIMIT $4;

-- name: experiment_exists
SELECT EXISTS (SELECT 1 FROM experiments WHERE id = $1 AND ($2::text IS NULL OR workspace = $2));

-- name: geo_dataset_exists
SELECT EXISTS (SELECT 1 FROM geo_datasets WHERE id = $1 AND ($2::text IS NULL OR workspace = $2));
