"""A per-key rate limit by scope: 429 problem+json with Retry-After beyond it."""

from __future__ import annotations

import uuid
from dataclasses import replace

from litestar.testing import AsyncTestClient

from api.app import create_app
from api.auth.keys import Scope
from api.auth.rate_limit import RateLimiter
from api.settings import Settings
from testkit.database import make_key


def test_a_key_may_burst_up_to_its_minute_then_waits() -> None:
    limiter = RateLimiter({Scope.READ: 3})
    key = uuid.uuid4()
    assert [limiter.retry_after(key, Scope.READ, now=0.0) for _ in range(3)] == [None, None, None]
    assert limiter.retry_after(key, Scope.READ, now=0.0) == 20


def test_the_bucket_refills_at_the_rate() -> None:
    limiter = RateLimiter({Scope.READ: 60})
    key = uuid.uuid4()
    for _ in range(60):
        limiter.retry_after(key, Scope.READ, now=0.0)
    assert limiter.retry_after(key, Scope.READ, now=0.5) == 1
    assert limiter.retry_after(key, Scope.READ, now=1.0) is None


def test_keys_are_limited_separately_and_zero_means_unlimited() -> None:
    limiter = RateLimiter({Scope.READ: 1, Scope.ADMIN: 0})
    first, second = uuid.uuid4(), uuid.uuid4()
    assert limiter.retry_after(first, Scope.READ, now=0.0) is None
    assert limiter.retry_after(second, Scope.READ, now=0.0) is None
    assert all(limiter.retry_after(first, Scope.ADMIN, now=0.0) is None for _ in range(1000))


async def test_a_key_over_its_limit_is_429_problem_json_with_retry_after(settings: Settings, database_url: str) -> None:
    app = create_app(replace(settings, rate_limit_read_per_minute=2))
    async with AsyncTestClient(app=app) as client:
        client.headers["Authorization"] = f"Bearer {await make_key(database_url, Scope.READ)}"
        statuses = [(await client.get("/v1/experiments")).status_code for _ in range(2)]
        limited = await client.get("/v1/experiments")
        client.headers["Authorization"] = f"Bearer {await make_key(database_url, Scope.READ)}"
        other = await client.get("/v1/experiments")
    assert statuses == [200, 200]
    assert limited.status_code == 429
    assert limited.headers["content-type"].startswith("application/problem+json")
    assert int(limited.headers["retry-after"]) >= 1
    assert other.status_code == 200
