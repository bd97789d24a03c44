-- name: insert_event
INSERT INTO audit_events (subject_kind, subject_id, action, key_id, key_name, details)
VALUES ($1, $2, $3, $4, $5, $6);

-- name: list_events
-- Oldest first; the cursor is the id of the last event of the previous page.
SELECT * FROM audit_events
WHERE subject_kind = $1 AND subject_id = $2 AND id > $3
ORDER BY id
LIMIT $4;

-- name: subject_has_events
SELECT EXISTS (SELECT 1 FROM audit_events WHERE subject_kind = $1 AND subject_id = $2);

-- name: experiment_exists
SELECT EXISTS (SELECT 1 FROM experiments WHERE id = $1);

-- name: geo_dataset_exists
SELECT EXISTS (SELECT 1 FROM geo_datasets WHERE id = $1);
