-- name: forget_expired
-- Answers older than the retention ($1 seconds) are forgotten (this key's at once, others' a retention
-- later), and so is this key's claim when its request has been running for an hour (its process died).
DELETE FROM idempotent_requests
WHERE (caller = $2 AND idempotency_key = $3
       AND (created_at < clock_timestamp() - make_interval(secs => $1)
            OR (status IS NULL AND created_at < clock_timestamp() - interval '1 hour')))
   OR created_at < clock_timestamp() - make_interval(secs => 2 * $1);

-- name: claim
-- Returns a row only when this request is the first with the key.
INSERT INTO idempotent_requests (caller, idempotency_key, operation, path)
VALUES ($1, $2, $3, $4)
ON CONFLICT (caller, idempotency_key) DO NOTHING
RETURNING created_at;

-- name: select
SELECT * FROM idempotent_requests WHERE caller = $1 AND idempotency_key = $2;

-- name: complete
UPDATE idempotent_requests SET request_hash = $3, status = $4, headers = $5, body = $6, location = $7
WHERE caller = $1 AND idempotency_key = $2;

-- name: release
-- The first request failed: a retry with the same key may try again.
DELETE FROM idempotent_requests WHERE caller = $1 AND idempotency_key = $2 AND status IS NULL;

-- name: forget_replies_about
-- Every caller's stored replies about the resource at path $1 (an experiment or a dataset being deleted):
-- the reply that created it (its `Location`) and those of requests under it (`<path>/assignments`, ...).
DELETE FROM idempotent_requests WHERE location = $1 OR left(path, length($1) + 1) = $1 || '/';

-- name: forget_design_job_replies
-- The stored replies (202 and the job's `Location`) of the market selections and matched-pair designs made on
-- dataset $1, whose jobs are deleted with it.
DELETE FROM idempotent_requests WHERE location IN (
    SELECT '/v1/jobs/' || id FROM geo_market_selections WHERE dataset_id = $1
    UNION ALL
    SELECT '/v1/jobs/' || id FROM geo_matched_pair_designs WHERE dataset_id = $1
);

-- name: key_names_an_experiment
-- Whether caller $1 (an API key's id) created an experiment in workspace $3 with Idempotency-Key $2 (those keys
-- are kept on the experiment, api/experiments): the key then names that request, and another one with it is 422.
SELECT EXISTS (
    SELECT 1 FROM experiments WHERE created_by IS NOT DISTINCT FROM $1 AND idempotency_key = $2 AND workspace = $3
);

-- name: key_names_a_stored_request
-- Whether caller $1 (the key id's and workspace's bytes) holds Idempotency-Key $2 for another request in this table.
SELECT EXISTS (SELECT 1 FROM idempotent_requests WHERE caller = $1 AND idempotency_key = $2);
