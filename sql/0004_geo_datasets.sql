-- Geo panels: one row per uploaded dataset, its observations one row per (geo, date).
-- The panel is written with COPY in the same transaction as its dataset row. geo_observations has
-- no foreign key to geo_datasets on purpose: the per-row RI trigger made COPY several times slower
-- (1M+ rows per upload); the API writes both in one transaction and deletes them together.
CREATE TABLE geo_datasets (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    geo_count   integer NOT NULL CHECK (geo_count >= 2),
    date_count  integer NOT NULL CHECK (date_count >= 1),
    row_count   bigint NOT NULL,
    first_date  date NOT NULL,
    last_date   date NOT NULL,
    has_spend   boolean NOT NULL,
    geos        text[] NOT NULL,
    quality     jsonb NOT NULL,
    CHECK (first_date <= last_date)
);

CREATE INDEX geo_datasets_created_idx ON geo_datasets (created_at DESC, id DESC);

CREATE TABLE geo_observations (
    dataset_id uuid NOT NULL,
    geo        text NOT NULL,
    date       date NOT NULL,
    kpi        double precision NOT NULL CHECK (kpi >= 0),
    spend      double precision,
    PRIMARY KEY (dataset_id, geo, date)
);
