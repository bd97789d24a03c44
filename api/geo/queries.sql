-- name: insert_dataset
INSERT INTO geo_datasets
    (id, name, geo_count, date_count, row_count, first_date, last_date, has_spend, geos, quality, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
RETURNING *;

-- name: select_dataset
SELECT * FROM geo_datasets WHERE id = $1;

-- name: select_series
-- One geo's rows (or every geo's when $2 is NULL), by geo then date.
SELECT geo, date, kpi, spend FROM geo_observations
WHERE dataset_id = $1 AND ($2::text IS NULL OR geo = $2)
ORDER BY geo, date;

-- name: select_panel_window
-- The KPI of every geo between two dates (both included), for an analysis.
SELECT geo, date, kpi, spend FROM geo_observations
WHERE dataset_id = $1 AND date BETWEEN $2 AND $3;

-- name: select_dataset_geos
SELECT geos FROM geo_datasets WHERE id = $1;
