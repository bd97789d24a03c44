-- name: insert_workspace
-- Nothing when the name is taken.
INSERT INTO workspaces (name) VALUES ($1)
ON CONFLICT (name) DO NOTHING
RETURNING *;

-- name: select_workspace
SELECT * FROM workspaces WHERE name = $1;

-- name: list_workspaces
SELECT * FROM workspaces ORDER BY created_at, name;
