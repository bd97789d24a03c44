-- Experiments: holdout (user-level) and geo (market-level) tests.
-- The design is kept as JSON (its shape is validated by the API); the columns that queries filter or
-- join on are real columns.
CREATE TABLE experiments (
    id              uuid PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('holdout', 'geo')),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    status          text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'running', 'stopped')),
    design          jsonb NOT NULL,
    salt            text,
    idempotency_key text UNIQUE,
    request_hash    text,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    started_at      timestamptz,
    stopped_at      timestamptz
);

-- Cursor pagination walks (created_at, id) newest first, optionally filtered by kind and status.
CREATE INDEX experiments_created_idx ON experiments (created_at DESC, id DESC);
CREATE INDEX experiments_kind_status_created_idx ON experiments (kind, status, created_at DESC, id DESC);

-- Holdout channels, one row each; assignments and observations refer to them by position.
CREATE TABLE experiment_channels (
    experiment_id    uuid NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    position         smallint NOT NULL,
    name             text NOT NULL,
    holdout_fraction double precision NOT NULL CHECK (holdout_fraction > 0 AND holdout_fraction < 1),
    PRIMARY KEY (experiment_id, position),
    UNIQUE (experiment_id, name)
);
