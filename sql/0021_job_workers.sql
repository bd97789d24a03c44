-- The `counterfact worker` processes alive now: each one writes its row when it connects, moves
-- `heartbeat_at` every few seconds while it can reach the database, and deletes the row when it stops.
-- A row whose heartbeat is older than the job heartbeat timeout is a worker that died (SIGKILL, a lost
-- machine); GET /health counts the others and says how long the oldest queued job has waited.
CREATE TABLE job_workers (
    id           uuid PRIMARY KEY,
    host         text NOT NULL,
    pid          integer NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    heartbeat_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- The oldest queued job, found without reading every finished job.
CREATE INDEX jobs_queued_created_at ON jobs (created_at) WHERE status = 'queued';
