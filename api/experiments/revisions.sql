-- name: bump_data_revision
INSERT INTO experiment_revisions (experiment_id, revision) VALUES ($1, 1)
ON CONFLICT (experiment_id) DO UPDATE
    SET revision = experiment_revisions.revision + 1, changed_at = clock_timestamp();

-- name: experiment_revision
-- The experiment's settings (its row changes on every PATCH) and its data revision, as one text.
SELECT e.updated_at::text || '/' || coalesce(r.revision, 0)::text
FROM experiments AS e
LEFT JOIN experiment_revisions AS r ON r.experiment_id = e.id
WHERE e.id = $1;

-- name: geo_dataset_marker
-- What changes when a dataset's content does: every upload or append is a new version.
SELECT id::text || ':v' || version::text FROM geo_datasets WHERE id = $1;
