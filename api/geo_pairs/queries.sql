-- name: select_window_dates
-- Every date of the dataset within the design's pre-period, in order, as of version $4.
SELECT DISTINCT date FROM geo_observations
WHERE dataset_id = $1 AND date BETWEEN $2 AND $3
  AND version_added <= $4 AND (version_replaced IS NULL OR version_replaced > $4)
ORDER BY date;

-- name: select_pair_design_sums
-- Per geo over the pre-period $2..$3: the dates it has, and response and spend summed over the
-- training days (outside the evaluation window $4..$5), over the evaluation window, and the response
-- over the latest days (from $6), which the randomization's sign test compares; as of version $7.
SELECT geo,
       count(*) AS days,
       coalesce(sum(kpi) FILTER (WHERE date NOT BETWEEN $4 AND $5), 0) AS training_response,
       coalesce(sum(spend) FILTER (WHERE date NOT BETWEEN $4 AND $5), 0) AS training_spend,
       coalesce(sum(kpi) FILTER (WHERE date BETWEEN $4 AND $5), 0) AS evaluation_response,
       coalesce(sum(spend) FILTER (WHERE date BETWEEN $4 AND $5), 0) AS evaluation_spend,
       coalesce(sum(kpi) FILTER (WHERE date >= $6), 0) AS latest_response
FROM geo_observations
WHERE dataset_id = $1 AND date BETWEEN $2 AND $3
  AND version_added <= $7 AND (version_replaced IS NULL OR version_replaced > $7)
GROUP BY geo
ORDER BY geo;

-- name: upsert_matched_pair_design
-- A retried job writes the same result again: the row is replaced, never duplicated.
INSERT INTO geo_matched_pair_designs (id, dataset_id, request, result)
VALUES ($1, $2, $3, $4)
ON CONFLICT (id) DO UPDATE SET request = EXCLUDED.request, result = EXCLUDED.result;

-- name: select_matched_pair_design
-- In workspace $2 (any when NULL), its dataset's: another workspace's design is not found.
SELECT s.id, s.dataset_id, s.request, s.result, s.created_at FROM geo_matched_pair_designs AS s
JOIN geo_datasets AS d ON d.id = s.dataset_id AND ($2::text IS NULL OR d.workspace = $2)
WHERE s.id = $1;
