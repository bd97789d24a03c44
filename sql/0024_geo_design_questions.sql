-- One computation per question for geo designs (issue 25). `POST /v1/geo/power` keeps its answers as results
-- do (sql/0022), owned by the dataset they read rather than by an experiment: the revision is the dataset
-- version read, and keeping an answer at a new version forgets the dataset's answers at every other one.
ALTER TABLE kept_answers
    ALTER COLUMN experiment_id DROP NOT NULL,
    ADD COLUMN dataset_id uuid REFERENCES geo_datasets (id) ON DELETE CASCADE,
    ADD CONSTRAINT kept_answers_one_owner CHECK (num_nonnulls(experiment_id, dataset_id) = 1);
CREATE INDEX kept_answers_dataset_idx ON kept_answers (dataset_id);

-- Market selections and matched-pair designs are always jobs: an identical request is answered by the job
-- that succeeded on the same question, found here (for as long as jobs are kept).
CREATE INDEX jobs_question_answered_idx ON jobs (question, finished_at) WHERE status = 'succeeded';
