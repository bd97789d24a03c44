-- name: insert_dataset
-- $12: the workspace it belongs to.
INSERT INTO geo_datasets
    (id, name, geo_count, date_count, row_count, first_date, last_date, has_spend, geos, quality, created_by,
     workspace)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
RETURNING *;

-- name: insert_dataset_version
-- What version $2 of dataset $1 added ($5..$9) and the dataset as it stood once written ($10..$17), written
-- at $18 (now when NULL; an upload's version 1 is as old as its dataset).
INSERT INTO geo_dataset_versions
    (dataset_id, version, created_by, idempotency_key, rows_added, rows_replaced, added_first_date,
     added_last_date, new_geos, geo_count, date_count, row_count, first_date, last_date, has_spend, geos, quality,
     created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
        coalesce($18::timestamptz, clock_timestamp()))
RETURNING *;

-- name: update_dataset_latest
-- The dataset's summary columns describe its latest version, $2.
UPDATE geo_datasets
SET version = $2, geo_count = $3, date_count = $4, row_count = $5, first_date = $6, last_date = $7,
    has_spend = $8, geos = $9, quality = $10
WHERE id = $1
RETURNING *;

-- name: select_dataset
-- The dataset as of version $2 (the latest when NULL), in workspace $3 (any when NULL): no row when either is
-- unknown or the dataset is another workspace's.
SELECT d.id, d.name, d.created_at, d.created_by, d.workspace, d.version AS latest_version, v.version,
       v.created_at AS version_created_at, v.geo_count, v.date_count, v.row_count, v.first_date, v.last_date,
       v.has_spend, v.geos, v.quality
FROM geo_datasets d
JOIN geo_dataset_versions v ON v.dataset_id = d.id AND v.version = coalesce($2::integer, d.version)
WHERE d.id = $1 AND ($3::text IS NULL OR d.workspace = $3);

-- name: select_dataset_latest_version
SELECT version FROM geo_datasets WHERE id = $1 AND ($2::text IS NULL OR workspace = $2);

-- name: lock_dataset_for_append
-- Serialises the appends to one dataset (each takes the next version number) and a deletion.
SELECT id, name, version, has_spend, workspace FROM geo_datasets
WHERE id = $1 AND ($2::text IS NULL OR workspace = $2)
FOR UPDATE;

-- name: select_versions
-- None when the dataset is in another workspace than $2 (any when NULL).
SELECT v.* FROM geo_dataset_versions AS v
JOIN geo_datasets AS d ON d.id = v.dataset_id AND ($2::text IS NULL OR d.workspace = $2)
WHERE v.dataset_id = $1 ORDER BY v.version;

-- name: list_datasets
-- Newest first, in workspace $5 (every one when NULL), optionally only names containing $1 (case-insensitive);
-- the cursor is the (created_at, id) of the last row of the previous page.
SELECT * FROM geo_datasets
WHERE ($5::text IS NULL OR workspace = $5)
  AND ($1::text IS NULL OR strpos(lower(name), lower($1)) > 0)
  AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
ORDER BY created_at DESC, id DESC
LIMIT $4;

-- name: select_series
-- One geo's rows (or every geo's when $2 is NULL) as of version $3, by geo then date.
SELECT geo, date, kpi, spend FROM geo_observations
WHERE dataset_id = $1 AND ($2::text IS NULL OR geo = $2)
  AND version_added <= $3 AND (version_replaced IS NULL OR version_replaced > $3)
ORDER BY geo, date;

-- name: select_panel_window
-- The KPI of every geo between two dates (both included) as of version $4, for an analysis.
SELECT geo, date, kpi, spend FROM geo_observations
WHERE dataset_id = $1 AND date BETWEEN $2 AND $3
  AND version_added <= $4 AND (version_replaced IS NULL OR version_replaced > $4);

-- name: select_current_panel
-- Every current row (the latest version's panel) as fixed-width columns, for the data-quality findings after an
-- append: the market's position in $2 (from 0), days since 2000-01-01, KPI.
SELECT (g.position - 1)::int4 AS code, (o.date - DATE '2000-01-01')::int4 AS day, o.kpi
FROM geo_observations o
JOIN unnest($2::text[]) WITH ORDINALITY AS g (geo, position) ON g.geo = o.geo
WHERE o.dataset_id = $1 AND o.version_replaced IS NULL;

-- name: select_collisions
-- Market-dates of version $2 that an earlier version already holds (current rows): the first $3, by date,
-- with how many there are in all.
SELECT n.geo, n.date, count(*) OVER () AS total
FROM geo_observations n
JOIN geo_observations o
  ON o.dataset_id = n.dataset_id AND o.geo = n.geo AND o.date = n.date
 AND o.version_added < n.version_added AND o.version_replaced IS NULL
WHERE n.dataset_id = $1 AND n.version_added = $2
ORDER BY n.date, n.geo
LIMIT $3;

-- name: mark_replaced
-- The earlier rows of the market-dates version $2 corrects are replaced as of version $2.
UPDATE geo_observations o
SET version_replaced = $2
FROM geo_observations n
WHERE n.dataset_id = $1 AND n.version_added = $2
  AND o.dataset_id = $1 AND o.geo = n.geo AND o.date = n.date
  AND o.version_added < $2 AND o.version_replaced IS NULL;

-- name: select_market_dates
-- Which of the markets $2 have a row on which dates between $3 and $4, as of version $5.
SELECT geo, array_agg(date ORDER BY date) AS dates FROM geo_observations
WHERE dataset_id = $1 AND geo = ANY($2::text[]) AND date BETWEEN $3 AND $4
  AND version_added <= $5 AND (version_replaced IS NULL OR version_replaced > $5)
GROUP BY geo;

-- name: select_market_row_counts
-- How many rows each of the markets $2 has between $3 and $4, as of version $5.
SELECT geo, count(*) AS days FROM geo_observations
WHERE dataset_id = $1 AND geo = ANY($2::text[]) AND date BETWEEN $3 AND $4
  AND version_added <= $5 AND (version_replaced IS NULL OR version_replaced > $5)
GROUP BY geo;
