-- The reduce of a fanned-out job is claimed once: a re-delivered part that finds every part done does
-- not reduce again while the claimant is alive (its heartbeat moves `heartbeat_at`).
ALTER TABLE jobs ADD COLUMN reduce_claimed_at timestamptz;
