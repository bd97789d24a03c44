-- The `Location` of a stored reply (the dataset or job the first request created), so that deleting an
-- experiment or a dataset deletes the replies about it: a retry of a deleted dataset's upload must not
-- answer the deleted dataset's summary. `request_hash` now covers the method, path and query string as
-- well as the body (api/idempotency/middleware.py): a key reused on another path is refused, not replayed.
ALTER TABLE idempotent_requests ADD COLUMN location text;

CREATE INDEX idempotent_requests_location_idx ON idempotent_requests (location) WHERE location IS NOT NULL;
