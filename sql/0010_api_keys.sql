-- API keys: who may call /v1, and with which scope. Only a SHA-256 hash of each key is kept; the key
-- itself is shown once, when it is made. `scope` is the highest granted (admin ⊃ write ⊃ read).
CREATE TABLE api_keys (
    id         uuid PRIMARY KEY,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    key_hash   bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    scope      text NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at timestamptz,
    revoked_at timestamptz
);

-- One-time events of the service's life (e.g. the first admin key printed by `counterfact serve`).
CREATE TABLE service_markers (
    name       text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
