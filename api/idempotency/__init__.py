"""``Idempotency-Key`` on the POSTs that load data: a retry gets the first answer, and nothing twice."""
