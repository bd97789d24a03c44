-- One computation per question (issue 25). A results request asks a question: the experiment, the revision
-- of the data it reads, and its parameters (api/jobs/questions.py hashes them into `question`).
--
-- A holdout experiment's data revision: every write to its assignments, outcomes, observations or spend
-- bumps it, in the writing transaction (api/experiments/revisions.py). A separate row, not a column of
-- `experiments`: concurrent uploads hold the experiment row FOR SHARE, and an UPDATE of it would make them
-- wait for each other. No row yet means revision 0.
CREATE TABLE experiment_revisions (
    experiment_id uuid PRIMARY KEY REFERENCES experiments (id) ON DELETE CASCADE,
    revision      bigint NOT NULL CHECK (revision > 0),
    changed_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- A question's answer, kept until the experiment's data or settings change (a new revision is a new
-- question; storing an answer forgets the experiment's answers at other revisions). `answer` is the JSON
-- exactly as computed.
CREATE TABLE kept_answers (
    question      text PRIMARY KEY,
    experiment_id uuid NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    revision      text NOT NULL,
    answer        bytea NOT NULL,
    computed_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX kept_answers_experiment_idx ON kept_answers (experiment_id);

-- The question a job answers: at most one queued or running job per question, which identical requests
-- join instead of queueing another.
ALTER TABLE jobs ADD COLUMN question text;
CREATE UNIQUE INDEX jobs_question_in_flight_idx ON jobs (question) WHERE status IN ('queued', 'running');
