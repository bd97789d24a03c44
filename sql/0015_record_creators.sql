-- Who made what: the API key (`api_keys.id`) that created each experiment, job and geo dataset, and the
-- one that last changed each experiment's status or design (with `updated_at`). Null for rows made
-- outside the API (before keys existed, or by code run without a request). Keys are revoked, never
-- deleted, so the references hold. The audit trail keeps the full story; these answer "whose is it".
ALTER TABLE experiments
    ADD COLUMN created_by uuid REFERENCES api_keys (id),
    ADD COLUMN updated_by uuid REFERENCES api_keys (id);
ALTER TABLE jobs ADD COLUMN created_by uuid REFERENCES api_keys (id);
ALTER TABLE geo_datasets ADD COLUMN created_by uuid REFERENCES api_keys (id);

-- An experiment's `Idempotency-Key` belongs to the key that sent it (as in `idempotent_requests`): two
-- callers may use the same key without meeting, and creates without a caller share one namespace.
ALTER TABLE experiments DROP CONSTRAINT experiments_idempotency_key_key;
CREATE UNIQUE INDEX experiments_idempotency_key_idx ON experiments (created_by, idempotency_key) NULLS NOT DISTINCT
    WHERE idempotency_key IS NOT NULL;
