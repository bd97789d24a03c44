-- Jobs run by `counterfact worker` processes from a PostgreSQL queue (pgqueuer's tables, installed at
-- start-up by pgqueuer itself, carry the dispatch; this table stays the resource clients read).
-- A job is `queued` until a worker starts it, then `running`; `attempts` counts the starts (a worker
-- that died is replaced by another, at most `max_attempts` times); `cancelled` ends it early. A job may
-- fan out into parts that any worker computes; the last part to finish hands them to `reduce_task`.
ALTER TABLE jobs DROP CONSTRAINT jobs_status_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_status_check
    CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled'));
ALTER TABLE jobs
    ADD COLUMN payload      bytea,
    ADD COLUMN attempts     integer NOT NULL DEFAULT 0,
    ADD COLUMN parts_total  integer,
    ADD COLUMN parts_done   integer NOT NULL DEFAULT 0,
    ADD COLUMN reduce_task  text;

CREATE TABLE job_parts (
    job_id      uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    part_index  integer NOT NULL,
    task        text NOT NULL,
    payload     bytea NOT NULL,
    status      text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done')),
    attempts    integer NOT NULL DEFAULT 0,
    result      bytea,
    PRIMARY KEY (job_id, part_index),
    CHECK ((status = 'done') = (result IS NOT NULL))
);
