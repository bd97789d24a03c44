-- The audit trail: who (which API key) did what to an experiment or a geo dataset, and when. Written in
-- the transaction of the change it records. No foreign key to its subject, on purpose: the event of a
-- deletion outlives the rows deleted. The key's name is copied so the trail reads the same later.
CREATE TABLE audit_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject_kind text NOT NULL CHECK (subject_kind IN ('experiment', 'geo_dataset')),
    subject_id   uuid NOT NULL,
    action       text NOT NULL,
    key_id       uuid,
    key_name     text,
    details      json NOT NULL DEFAULT '{}'::json,  -- json: key order kept as written
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX audit_events_subject ON audit_events (subject_kind, subject_id, id);
