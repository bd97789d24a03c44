-- name: job_queue_depth
-- Jobs waiting for a worker or being computed, by kind and status (every replica sees the same queue).
SELECT kind, status, count(*) AS jobs
FROM jobs
WHERE status IN ('queued', 'running')
GROUP BY kind, status;

-- name: job_durations
-- Finished jobs (kept for JOB_RETENTION) by kind, final status and duration bucket. A job's duration is
-- from submission to end (queueing included: what a client waits); its `bucket` is the number of bounds
-- in $1 below it, so it counts under every bound from that index on (Prometheus' `le`).
SELECT kind, status, bucket, count(*) AS jobs, sum(seconds) AS seconds
FROM (
    SELECT kind, status, extract(epoch FROM finished_at - created_at)::float8 AS seconds
    FROM jobs
    WHERE finished_at IS NOT NULL
) finished
CROSS JOIN LATERAL (SELECT count(*) AS bucket FROM unnest($1::float8[]) AS bound (le) WHERE bound.le < seconds) b
GROUP BY kind, status, bucket;
