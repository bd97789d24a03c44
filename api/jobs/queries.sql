-- name: insert_job
-- $6: the workspace it belongs to.
INSERT INTO jobs (id, kind, subject, status, payload, created_by, workspace)
VALUES ($1, $2, $3, 'queued', $4, $5, $6)
RETURNING id, kind, subject, status, progress, attempts, result, error, created_at, heartbeat_at, finished_at,
          created_by, workspace;

-- name: select_job
-- In workspace $2 (any when NULL): another workspace's job is not found.
SELECT id, kind, subject, status, progress, attempts, result, error, created_at, heartbeat_at, finished_at,
       created_by, workspace
FROM jobs WHERE id = $1 AND ($2::text IS NULL OR workspace = $2);

-- name: list_jobs
-- Newest first, in workspace $6 (every one when NULL), optionally of one kind and status; the cursor is the
-- (created_at, id) of the last row of the previous page (index jobs_workspace_created_idx, jobs_created_idx).
SELECT id, kind, subject, status, progress, attempts, created_at, heartbeat_at, finished_at, created_by,
       workspace
FROM jobs
WHERE ($6::text IS NULL OR workspace = $6)
  AND ($1::text IS NULL OR kind = $1)
  AND ($2::text IS NULL OR status = $2)
  AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::uuid))
ORDER BY created_at DESC, id DESC
LIMIT $5;

-- name: start_attempt
-- A worker takes the job (again, when the worker before it died): one more attempt, unless it has ended.
-- A job already fanned out runs as its parts: taking it again is no new attempt.
UPDATE jobs SET status = 'running', heartbeat_at = clock_timestamp(),
       attempts = attempts + CASE WHEN parts_total IS NULL THEN 1 ELSE 0 END
WHERE id = $1 AND status IN ('queued', 'running')
RETURNING kind, payload, attempts, parts_total, reduce_task;

-- name: record_progress
-- Heartbeat of the attempt that runs the job; answers the job's status so a cancel reaches the worker.
UPDATE jobs SET progress = greatest(progress, $3), heartbeat_at = clock_timestamp()
WHERE id = $1 AND (attempts = $2 OR $2 = 0)
RETURNING status;

-- name: finish_job
-- Only the attempt running the job finishes it, and only once: a late or earlier attempt changes nothing.
UPDATE jobs SET status = $3, progress = CASE WHEN $3 = 'succeeded' THEN 1 ELSE progress END,
       result = $4::text::json, error = $5, heartbeat_at = clock_timestamp(), finished_at = clock_timestamp()
WHERE id = $1 AND status = 'running' AND (attempts = $2 OR $2 = 0);

-- name: cancel_job
UPDATE jobs SET status = 'cancelled', finished_at = clock_timestamp(), heartbeat_at = clock_timestamp()
WHERE id = $1 AND status IN ('queued', 'running') AND ($2::text IS NULL OR workspace = $2);

-- name: set_parts
UPDATE jobs SET parts_total = $2, parts_done = 0, reduce_task = $3 WHERE id = $1 AND status = 'running';

-- name: insert_parts
INSERT INTO job_parts (job_id, part_index, task, payload)
SELECT $1, t.i - 1, $2, t.payload FROM unnest($3::bytea[]) WITH ORDINALITY AS t (payload, i)
ON CONFLICT (job_id, part_index) DO NOTHING;

-- name: start_part
-- A worker takes a part (again, when the one before died); the parent must still be running.
UPDATE job_parts p SET status = 'running', attempts = p.attempts + 1
FROM jobs j
WHERE p.job_id = $1 AND p.part_index = $2 AND p.status <> 'done' AND j.id = p.job_id AND j.status = 'running'
RETURNING p.task, p.payload, p.attempts;

-- name: finish_part
UPDATE job_parts SET status = 'done', result = $3
WHERE job_id = $1 AND part_index = $2 AND status <> 'done';

-- name: count_part_done
-- Serialised on the parent's row: exactly one finishing part sees every part done.
UPDATE jobs SET parts_done = parts_done + 1,
       progress = least(0.99, (parts_done + 1)::double precision / greatest(parts_total, 1)),
       heartbeat_at = clock_timestamp()
WHERE id = $1 AND status = 'running'
RETURNING parts_done, parts_total;

-- name: claim_reduce
-- Every part done and nobody reducing (or the one who was stopped heartbeating for $2): this caller reduces.
UPDATE jobs SET reduce_claimed_at = clock_timestamp(), heartbeat_at = clock_timestamp()
WHERE id = $1 AND status = 'running' AND parts_total IS NOT NULL AND parts_done >= parts_total
  AND (reduce_claimed_at IS NULL OR heartbeat_at < clock_timestamp() - $2::interval)
RETURNING payload, reduce_task;

-- name: hand_back_job
-- A stopping worker gives back the attempt it started ($2): the job is queued again from the start and
-- that start is not counted (only attempts that end, or whose worker dies, count). Nothing when the job
-- has ended, was cancelled, or already runs as its parts.
UPDATE jobs SET status = 'queued', attempts = attempts - 1, progress = 0, heartbeat_at = clock_timestamp()
WHERE id = $1 AND status = 'running' AND attempts = $2 AND parts_total IS NULL
RETURNING id;

-- name: hand_back_part
-- A stopping worker gives back the part it started: queued again, that start not counted.
UPDATE job_parts SET status = 'queued', attempts = attempts - 1
WHERE job_id = $1 AND part_index = $2 AND status = 'running'
RETURNING part_index;

-- name: release_reduce
-- A stopping worker gives back the reduce it claimed: the next worker to take the job claims it.
UPDATE jobs SET reduce_claimed_at = NULL, heartbeat_at = clock_timestamp()
WHERE id = $1 AND status = 'running' AND reduce_claimed_at IS NOT NULL
RETURNING id;

-- name: select_part_results
SELECT result FROM job_parts WHERE job_id = $1 AND status = 'done' ORDER BY part_index;

-- name: forget_old_jobs
-- Finished jobs are kept for JOB_RETENTION (their answers can always be computed again).
DELETE FROM jobs WHERE finished_at < clock_timestamp() - $1::interval;

-- name: worker_heartbeat
-- A worker says it is alive (the first time, or after its row was removed, the row is written).
INSERT INTO job_workers (id, host, pid) VALUES ($1, $2, $3)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = clock_timestamp();

-- name: forget_worker
DELETE FROM job_workers WHERE id = $1;

-- name: forget_dead_workers
-- Rows of workers silent for a day (killed): kept that long so /health can say when one was last seen.
DELETE FROM job_workers WHERE heartbeat_at < clock_timestamp() - interval '1 day';

-- name: worker_health
-- Workers heard from within $1, the last heartbeat of any worker, and the oldest queued job's age.
SELECT (SELECT count(*) FROM job_workers WHERE heartbeat_at >= clock_timestamp() - $1::interval) AS live,
       (SELECT max(heartbeat_at) FROM job_workers) AS last_heartbeat,
       (SELECT count(*) FROM jobs WHERE status = 'queued') AS queued,
       (SELECT extract(epoch FROM clock_timestamp() - min(created_at)) FROM jobs WHERE status = 'queued')
           AS oldest_queued_seconds;
