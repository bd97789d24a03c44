-- name: select_kept_answer
SELECT answer, computed_at FROM kept_answers WHERE question = $1;

-- name: keep_answer
-- An answer at a newer revision forgets the experiment's (or dataset's, $5) answers at every other one.
WITH forgotten AS (
    DELETE FROM kept_answers WHERE (experiment_id = $2 OR dataset_id = $5) AND revision <> $3
)
INSERT INTO kept_answers (question, experiment_id, revision, answer, dataset_id) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (question) DO NOTHING;

-- name: insert_question_job
-- Nothing when a job for the same question is queued or running already (jobs_question_in_flight_idx).
INSERT INTO jobs (id, kind, subject, status, payload, created_by, question, workspace)
VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7)
ON CONFLICT (question) WHERE status IN ('queued', 'running') DO NOTHING
RETURNING id;

-- name: select_question_job
-- The newest job asked the question (queued or running, unless it has just ended).
SELECT id FROM jobs WHERE question = $1 ORDER BY (status IN ('queued', 'running')) DESC, created_at DESC LIMIT 1;

-- name: select_job_in_flight
SELECT id FROM jobs WHERE question = $1 AND status IN ('queued', 'running');

-- name: select_answered_job
-- The newest job that succeeded on the question (jobs_question_answered_idx).
SELECT id FROM jobs WHERE question = $1 AND status = 'succeeded' ORDER BY finished_at DESC LIMIT 1;
