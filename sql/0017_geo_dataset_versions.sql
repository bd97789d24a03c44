-- Geo datasets grow: each upload or append (POST /v1/geo/datasets/{id}/rows) is a numbered version.
-- Versions are a filter on the rows, not copies of the panel: a row records the version that added it
-- and, once corrected by a later append (`on_conflict=replace`), the version that replaced it. The panel
-- as of version V is the rows with version_added <= V and (version_replaced IS NULL or > V).
-- The primary key keeps one row per (geo, date) per version, so a repeated market-date within one upload
-- or append is still refused by the key; a collision with an earlier version is found by a query.
ALTER TABLE geo_observations
    ADD COLUMN version_added integer NOT NULL DEFAULT 1 CHECK (version_added >= 1),
    ADD COLUMN version_replaced integer CHECK (version_replaced > version_added);
ALTER TABLE geo_observations DROP CONSTRAINT geo_observations_pkey;
ALTER TABLE geo_observations ADD PRIMARY KEY (dataset_id, geo, date, version_added);

-- The latest version; the summary columns of geo_datasets describe it.
ALTER TABLE geo_datasets ADD COLUMN version integer NOT NULL DEFAULT 1 CHECK (version >= 1);

-- One row per version: what it added and the dataset as it stood once it was written.
CREATE TABLE geo_dataset_versions (
    dataset_id      uuid NOT NULL,
    version         integer NOT NULL CHECK (version >= 1),
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_by      uuid REFERENCES api_keys (id),
    idempotency_key text,
    rows_added      bigint NOT NULL,
    rows_replaced   bigint NOT NULL DEFAULT 0,
    added_first_date date NOT NULL,
    added_last_date  date NOT NULL,
    new_geos        text[] NOT NULL DEFAULT '{}',
    geo_count       integer NOT NULL,
    date_count      integer NOT NULL,
    row_count       bigint NOT NULL,
    first_date      date NOT NULL,
    last_date       date NOT NULL,
    has_spend       boolean NOT NULL,
    geos            text[] NOT NULL,
    quality         jsonb NOT NULL,
    PRIMARY KEY (dataset_id, version)
);

INSERT INTO geo_dataset_versions
    (dataset_id, version, created_at, created_by, rows_added, added_first_date, added_last_date, new_geos,
     geo_count, date_count, row_count, first_date, last_date, has_spend, geos, quality)
SELECT id, 1, created_at, created_by, row_count, first_date, last_date, geos,
       geo_count, date_count, row_count, first_date, last_date, has_spend, geos, quality
FROM geo_datasets;

CREATE INDEX geo_datasets_name_idx ON geo_datasets (lower(name));
