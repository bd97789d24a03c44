-- Every table that holds an experiment's or a dataset's rows, from reading sql/ in order.
-- tests/api/test_lifecycle.py checks that every table with an `experiment_id` or `dataset_id` column is
-- named here, so a new table cannot be forgotten.

-- name: delete_assignments
DELETE FROM assignments WHERE experiment_id = $1;

-- name: delete_outcomes
DELETE FROM holdout_outcomes WHERE experiment_id = $1;

-- name: delete_observations
DELETE FROM holdout_observations WHERE experiment_id = $1;

-- name: delete_observation_history
DELETE FROM holdout_observation_history WHERE experiment_id = $1;

-- name: delete_channel_spend
DELETE FROM channel_spend WHERE experiment_id = $1;

-- name: delete_sequential_looks
DELETE FROM sequential_looks WHERE experiment_id = $1;

-- name: delete_sequential_mixing_variances
DELETE FROM sequential_mixing_variances WHERE experiment_id = $1;

-- name: delete_kept_answers
DELETE FROM kept_answers WHERE experiment_id = $1;

-- name: delete_experiment_revisions
DELETE FROM experiment_revisions WHERE experiment_id = $1;

-- name: delete_experiment_channels
DELETE FROM experiment_channels WHERE experiment_id = $1;

-- name: delete_jobs_about
-- Jobs (and their stored results) whose subject is a path under $1, e.g. /v1/experiments/<id>/results.
DELETE FROM jobs WHERE left(subject, length($1)) = $1;

-- name: delete_experiment
DELETE FROM experiments WHERE id = $1;

-- name: lock_dataset
-- In workspace $2 (any when NULL): another workspace's dataset is not found.
SELECT id, name FROM geo_datasets WHERE id = $1 AND ($2::text IS NULL OR workspace = $2) FOR UPDATE;

-- name: experiments_on_dataset
-- Geo experiments whose design reads dataset $1, running ones first.
SELECT id, name, status FROM experiments
WHERE kind = 'geo' AND design ->> 'dataset_id' = $1::uuid::text
ORDER BY status <> 'running', created_at, id;

-- name: delete_geo_observations
DELETE FROM geo_observations WHERE dataset_id = $1;

-- name: delete_dataset_kept_answers
-- Geo power answers kept for the dataset (api/jobs/questions.py).
DELETE FROM kept_answers WHERE dataset_id = $1;

-- name: delete_geo_dataset_versions
DELETE FROM geo_dataset_versions WHERE dataset_id = $1;

-- name: delete_design_jobs
-- The jobs that computed market selections or matched-pair designs on the dataset (their results hold its
-- markets' figures).
DELETE FROM jobs WHERE id IN (
    SELECT id FROM geo_market_selections WHERE dataset_id = $1
    UNION ALL
    SELECT id FROM geo_matched_pair_designs WHERE dataset_id = $1
);

-- name: delete_market_selections
DELETE FROM geo_market_selections WHERE dataset_id = $1;

-- name: delete_matched_pair_designs
DELETE FROM geo_matched_pair_designs WHERE dataset_id = $1;

-- name: delete_dataset
DELETE FROM geo_datasets WHERE id = $1;
