-- name: upsert_market_selection
-- A retried ranking step writes the same result again: the row is replaced, never duplicated.
INSERT INTO geo_market_selections (id, dataset_id, request, result)
VALUES ($1, $2, $3, $4)
ON CONFLICT (id) DO UPDATE SET request = EXCLUDED.request, result = EXCLUDED.result;

-- name: select_market_selection
SELECT id, dataset_id, request, result, created_at FROM geo_market_selections WHERE id = $1;
