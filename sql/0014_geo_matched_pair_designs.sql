-- Finished matched-pair designs (POST /v1/geo/matched-pairs), kept for as long as experiments may
-- point at them (jobs are forgotten after 30 days; a design an experiment was created from is not).
CREATE TABLE geo_matched_pair_designs (
    id          uuid PRIMARY KEY,          -- the id of the job that computed it
    dataset_id  uuid NOT NULL,
    request     jsonb NOT NULL,
    result      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX geo_matched_pair_designs_dataset_idx ON geo_matched_pair_designs (dataset_id);
