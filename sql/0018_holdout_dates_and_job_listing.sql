-- A holdout test's actual dates: the first and last day it ran (UTC calendar dates). Set from status
-- changes (`running` sets the start, `stopped` the end, when not stated already), or stated by the
-- caller in any status for a test imported after it ran. The plan (`test_period`) lives in `design`,
-- as a geo experiment's does. Existing experiments take their dates from the status changes they had.
ALTER TABLE experiments
    ADD COLUMN actual_start date,
    ADD COLUMN actual_end   date,
    ADD CONSTRAINT experiments_actual_period_check
        CHECK (actual_end IS NULL OR (actual_start IS NOT NULL AND actual_end >= actual_start));
UPDATE experiments
SET actual_start = (started_at AT TIME ZONE 'UTC')::date,
    actual_end   = (stopped_at AT TIME ZONE 'UTC')::date
WHERE kind = 'holdout' AND started_at IS NOT NULL;

-- `GET /v1/jobs` walks jobs newest first, by (created_at, id), optionally filtered by kind and status.
CREATE INDEX jobs_created_idx ON jobs (created_at DESC, id DESC);
