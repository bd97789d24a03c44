-- Long computations (e.g. geo results on a large panel) answered as jobs: the caller polls
-- GET /v1/jobs/{id} for progress and then the result, which is kept here (never only in memory).
-- `heartbeat_at` moves while the worker runs; a running job whose heartbeat stops (its process ended)
-- is reported as failed.
CREATE TABLE jobs (
    id           uuid PRIMARY KEY,
    kind         text NOT NULL,
    subject      text NOT NULL,
    status       text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    progress     double precision NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 1),
    result       json,  -- json, not jsonb: the answer comes back byte for byte, its key order kept
    error        json,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    heartbeat_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at  timestamptz,
    CHECK ((status = 'succeeded') = (result IS NOT NULL)),
    CHECK ((status = 'failed') = (error IS NOT NULL))
);
