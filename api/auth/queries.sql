-- name: insert_key
-- $6: the key's workspace; NULL (an admin key only) for every workspace.
INSERT INTO api_keys (id, name, key_hash, scope, expires_at, workspace)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING *;

-- name: select_key_by_hash
SELECT * FROM api_keys WHERE key_hash = $1;

-- name: list_keys
SELECT * FROM api_keys ORDER BY created_at, id;

-- name: revoke_key
-- Revoking twice keeps the first time.
UPDATE api_keys SET revoked_at = coalesce(revoked_at, clock_timestamp())
WHERE id = $1
RETURNING *;

-- name: claim_marker
-- Returns a row only for the one caller that sets the marker first.
INSERT INTO service_markers (name) VALUES ($1)
ON CONFLICT (name) DO NOTHING
RETURNING name;
