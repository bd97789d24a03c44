-- Responses of POSTs sent with an `Idempotency-Key`, replayed to a retry with the same key and body.
-- `caller` is the id of the caller's API key (keys are scoped to their caller); `request_hash`
-- the SHA-256 of the body. A row without `status` is a request still running. Rows live at least 24 h.
CREATE TABLE idempotent_requests (
    caller          bytea NOT NULL,
    idempotency_key text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    operation       text NOT NULL,
    path            text NOT NULL,
    request_hash    bytea,
    status          smallint,
    headers         json,
    body            bytea,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (caller, idempotency_key)
);

CREATE INDEX idempotent_requests_created_idx ON idempotent_requests (created_at);
