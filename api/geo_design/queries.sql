-- name: upsert_market_selection
-- A retried ranking step writes the same result again: the row is replaced, never duplicated.
INSERT INTO geo_market_selections (id, dataset_id, request, result)
VALUES ($1, $2, $3, $4)
ON CONFLICT (id) DO UPDATE SET request = EXCLUDED.request, result = EXCLUDED.result;

-- name: select_market_selection
-- In workspace $2 (any when NULL), its dataset's: another workspace's design is not found.
SELECT s.id, s.dataset_id, s.request, s.result, s.created_at FROM geo_market_selections AS s
JOIN geo_datasets AS d ON d.id = s.dataset_id AND ($2::text IS NULL OR d.workspace = $2)
WHERE s.id = $1;
