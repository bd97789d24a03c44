"""Unknown keys are cheap to refuse: a negative cache spares the database, and a client address that keeps
failing is refused with 429 and ``Retry-After`` before any lookup, logged once (issue 22)."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.auth import service
from api.auth.keys import Scope, generate_key
from api.auth.rate_limit import FailureLimiter
from api.settings import Settings
from testkit.database import make_key
from tests.conftest import LogCollector


def test_an_address_may_fail_its_minute_in_a_burst_then_waits() -> None:
    limiter = FailureLimiter(3)
    assert [limiter.record_failure("10.0.0.1", now=0.0) for _ in range(3)] == [False, False, True]
    assert limiter.retry_after("10.0.0.1", now=0.0) == 20
    assert limiter.retry_after("10.0.0.2", now=0.0) is None
    assert limiter.retry_after("10.0.0.1", now=20.0) is None


def test_zero_failures_a_minute_means_no_limit() -> None:
    limiter = FailureLimiter(0)
    assert not any(limiter.record_failure("10.0.0.1", now=0.0) for _ in range(1000))
    assert limiter.retry_after("10.0.0.1", now=0.0) is None


async def test_an_unknown_key_sent_again_is_not_looked_up_again(
    settings: Settings, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups: list[str] = []
    find_key = service.find_key

    async def counted(connection: object, presented: str) -> object:
        lookups.append(presented)
        return await find_key(connection, presented)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "find_key", counted)
    async with AsyncTestClient(app=create_app(replace(settings, api_key_negative_cache_seconds=60))) as client:
        client.headers["Authorization"] = f"Bearer {generate_key()}"
        statuses = [(await client.get("/v1/experiments")).status_code for _ in range(3)]
    assert statuses == [401, 401, 401]
    assert len(lookups) == 1


async def test_an_address_out_of_failures_gets_429_with_retry_after_and_one_log_line(
    settings: Settings, database_url: str
) -> None:
    collector = LogCollector()
    logger = logging.getLogger("counterfact.auth")
    logger.addHandler(collector)
    try:
        async with AsyncTestClient(app=create_app(replace(settings, auth_failures_per_minute=3))) as client:
            statuses = []
            for _ in range(10):
                client.headers["Authorization"] = f"Bearer {generate_key()}"
                statuses.append((await client.get("/v1/experiments")).status_code)
            limited = await client.get("/v1/experiments")
    finally:
        logger.removeHandler(collector)
    assert statuses == [401] * 3 + [429] * 7
    assert limited.headers["content-type"].startswith("application/problem+json")
    assert int(limited.headers["retry-after"]) >= 1
    messages = [record.getMessage() for record in collector.records]
    assert messages.count("api key refused") == 3
    assert messages.count("client address out of authentication failures") == 1


async def test_a_key_known_good_still_works_from_an_address_out_of_failures(
    settings: Settings, database_url: str
) -> None:
    good = f"Bearer {await make_key(database_url, Scope.READ)}"
    async with AsyncTestClient(app=create_app(replace(settings, auth_failures_per_minute=2))) as client:
        client.headers["Authorization"] = good
        assert (await client.get("/v1/experiments")).status_code == 200
        del client.headers["Authorization"]
        missing = [(await client.get("/v1/experiments")).status_code for _ in range(3)]
        client.headers["Authorization"] = good
        assert (await client.get("/v1/experiments")).status_code == 200
        client.headers["Authorization"] = f"Bearer {await make_key(database_url, Scope.READ)}"
        assert (await client.get("/v1/experiments")).status_code == 429  # not looked up: not known yet
    assert missing == [401, 401, 429]
