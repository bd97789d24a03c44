"""A per-key rate limit: a token bucket per API key, in this process's memory; and one on failed
authentications per client address (:class:`FailureLimiter`).

Why not a shared bucket (PostgreSQL, Redis) or a library: the limit exists to stop one runaway client
from starving the others, which an in-process bucket does at no cost per request, where a PostgreSQL
bucket would add a write to every call (the statements this API answers in a millisecond). The price is
that each worker process counts alone: with ``COUNTERFACT_WORKERS=N`` (or N replicas) a key may make up to
N times its rate. A token bucket is a dozen lines; a dependency for it would be more code to trust.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from uuid import UUID

from api.auth.keys import Scope

_MAX_KEYS = 100_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Each key may make ``per_minute[scope]`` requests a minute, in bursts of up to that many."""

    def __init__(self, per_minute: dict[Scope, int]) -> None:
        self.per_minute = per_minute
        self._buckets: dict[UUID, _Bucket] = {}

    def retry_after(self, key_id: UUID, scope: Scope, now: float | None = None) -> int | None:
        """Take one request from the key's bucket: ``None`` when allowed, else seconds to wait (≥ 1)."""
        limit = self.per_minute.get(scope, 0)
        if limit <= 0:
            return None
        now = time.monotonic() if now is None else now
        rate = limit / 60.0
        bucket = self._buckets.get(key_id)
        if bucket is None:
            if len(self._buckets) >= _MAX_KEYS:
                self._buckets.clear()
            bucket = self._buckets[key_id] = _Bucket(tokens=float(limit), updated=now)
        bucket.tokens = min(float(limit), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return max(1, math.ceil((1.0 - bucket.tokens) / rate))


class FailureLimiter:
    """Failed authentications per client address: ``per_minute`` of them, in bursts of up to that many.

    An address out of failures is refused (429) before its key is looked up, until its bucket refills, so
    a client cycling through made-up keys costs neither a database lookup nor a log line per request. Its
    keys already known good (the guard's cache) still work. Behind a proxy every client shares the proxy's
    address (the service does not trust forwarded headers), so the limit is per proxy there.
    """

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._buckets: dict[str, _Bucket] = {}

    def _bucket(self, address: str, now: float) -> _Bucket:
        bucket = self._buckets.get(address)
        if bucket is None:
            if len(self._buckets) >= _MAX_KEYS:
                self._buckets.clear()
            bucket = self._buckets[address] = _Bucket(tokens=float(self.per_minute), updated=now)
        rate = self.per_minute / 60.0
        bucket.tokens = min(float(self.per_minute), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        return bucket

    def retry_after(self, address: str, now: float | None = None) -> int | None:
        """``None`` while ``address`` may still fail; else the seconds until it may again (≥ 1)."""
        if self.per_minute <= 0:
            return None
        bucket = self._bucket(address, time.monotonic() if now is None else now)
        if bucket.tokens >= 1.0:
            return None
        return max(1, math.ceil((1.0 - bucket.tokens) * 60.0 / self.per_minute))

    def record_failure(self, address: str, now: float | None = None) -> bool:
        """Count one failure of ``address``; ``True`` when it used the address's last one."""
        if self.per_minute <= 0:
            return False
        bucket = self._bucket(address, time.monotonic() if now is None else now)
        bucket.tokens = max(0.0, bucket.tokens - 1.0)
        return bucket.tokens < 1.0
