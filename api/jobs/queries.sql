-- name: insert_job
INSERT INTO jobs (id, kind, subject, status, progress) VALUES ($1, $2, $3, 'running', $4)
RETURNING id, kind, subject, status, progress, result, error, created_at, heartbeat_at, finished_at;

-- name: record_progress
UPDATE jobs SET progress = greatest(progress, $2), heartbeat_at = clock_timestamp()
WHERE id = $1 AND status = 'running';

-- name: finish_job
UPDATE jobs SET status = $2, progress = CASE WHEN $2 = 'succeeded' THEN 1 ELSE progress END,
       result = $3, error = $4, heartbeat_at = clock_timestamp(), finished_at = clock_timestamp()
WHERE id = $1 AND status = 'running';

-- name: select_job
SELECT id, kind, subject, status, progress, result, error, created_at, heartbeat_at, finished_at,
       clock_timestamp() - heartbeat_at AS silent_for
FROM jobs WHERE id = $1;

-- name: fail_stale_job
-- A running job whose worker stopped reporting (its process ended) is failed, once and for good: a
-- late finish_job (status must still be 'running') cannot turn it into a success afterwards.
UPDATE jobs SET status = 'failed', error = $3, finished_at = clock_timestamp()
WHERE id = $1 AND status = 'running' AND heartbeat_at < clock_timestamp() - $2::interval;

-- name: forget_old_jobs
-- Finished jobs are kept for JOB_RETENTION (their answers can always be computed again).
DELETE FROM jobs WHERE finished_at < clock_timestamp() - $1::interval;
