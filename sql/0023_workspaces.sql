-- Workspaces keep teams apart (issue 22): every experiment, geo dataset, job and audit event belongs to one,
-- and an API key works in one (or, for an admin key whose `workspace` is NULL, in all). Rows under them
-- (assignments, outcomes, dataset rows and versions, designs, job parts, kept answers) belong to their parent's
-- workspace. A workspace is its name, which never changes: rows carry it, so nothing joins to show it.
-- What was there before moves to the workspace `default`.
CREATE TABLE workspaces (
    name       text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
INSERT INTO workspaces (name) VALUES ('default');

-- The column default only moves the existing rows; it is dropped so that every insert names its workspace.
ALTER TABLE experiments ADD COLUMN workspace text NOT NULL DEFAULT 'default' REFERENCES workspaces (name);
ALTER TABLE geo_datasets ADD COLUMN workspace text NOT NULL DEFAULT 'default' REFERENCES workspaces (name);
ALTER TABLE jobs ADD COLUMN workspace text NOT NULL DEFAULT 'default' REFERENCES workspaces (name);
ALTER TABLE audit_events ADD COLUMN workspace text NOT NULL DEFAULT 'default' REFERENCES workspaces (name);
ALTER TABLE experiments ALTER COLUMN workspace DROP DEFAULT;
ALTER TABLE geo_datasets ALTER COLUMN workspace DROP DEFAULT;
ALTER TABLE jobs ALTER COLUMN workspace DROP DEFAULT;
ALTER TABLE audit_events ALTER COLUMN workspace DROP DEFAULT;

-- A key's workspace; NULL (every workspace) only for an admin key. Existing keys work in `default`.
ALTER TABLE api_keys
    ADD COLUMN workspace text DEFAULT 'default' REFERENCES workspaces (name),
    ADD CONSTRAINT api_keys_every_workspace_is_admin CHECK (workspace IS NOT NULL OR scope = 'admin');
ALTER TABLE api_keys ALTER COLUMN workspace DROP DEFAULT;

-- Listings are newest first within a workspace (an all-workspaces key's keep the indexes without it); a lookup
-- by id stays on the primary key and checks the workspace of the one row it finds.
CREATE INDEX experiments_workspace_created_idx ON experiments (workspace, created_at DESC, id DESC);
CREATE INDEX geo_datasets_workspace_created_idx ON geo_datasets (workspace, created_at DESC, id DESC);
CREATE INDEX jobs_workspace_created_idx ON jobs (workspace, created_at DESC, id DESC);

-- An experiment's `Idempotency-Key` belongs to its key in one workspace (an all-workspaces key writes in several).
DROP INDEX experiments_idempotency_key_idx;
CREATE UNIQUE INDEX experiments_idempotency_key_idx ON experiments (workspace, created_by, idempotency_key)
    NULLS NOT DISTINCT WHERE idempotency_key IS NOT NULL;
