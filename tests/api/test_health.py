"""``GET /health``: up when the database answers, 503 while it cannot be reached, recovering by itself."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.settings import Settings
from tests.conftest import LogCollector, with_database

Client = AsyncTestClient[Litestar]


async def test_health_is_ok_when_the_database_answers(client: Client) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_every_response_carries_a_request_id(client: Client) -> None:
    response = await client.get("/health")
    assert len(response.headers["x-request-id"]) == 32


async def test_a_request_id_sent_by_the_caller_is_echoed(client: Client) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "trace-abc-123"})
    assert response.headers["x-request-id"] == "trace-abc-123"


async def test_a_path_no_route_matches_carries_a_request_id_and_is_logged(client: Client) -> None:
    handler = LogCollector()
    access = logging.getLogger("counterfact.access")
    level = access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        response = await client.get("/v1/no-such-thing", headers={"X-Request-ID": "trace-404"})
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    assert response.status_code == 404
    assert response.headers["x-request-id"] == "trace-404"
    logged = [r for r in handler.records if getattr(r, "request_id", None) == "trace-404"]
    assert [(getattr(r, "path", None), getattr(r, "status", None)) for r in logged] == [("/v1/no-such-thing", 404)]


@pytest.fixture
async def isolated_database(server_url: str) -> AsyncIterator[str]:
    """A database of its own, so the test can cut it off without disturbing the others."""
    name = f"counterfact_health_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield name
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def test_health_is_503_while_the_database_is_unreachable_and_recovers(
    settings: Settings, server_url: str, isolated_database: str
) -> None:
    app = create_app(replace(settings, database_url=with_database(server_url, isolated_database)))
    admin = await asyncpg.connect(server_url)
    try:
        async with AsyncTestClient(app=app) as client:
            assert (await client.get("/health")).status_code == 200
            await admin.execute(f'ALTER DATABASE "{isolated_database}" ALLOW_CONNECTIONS false')
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", isolated_database
            )
            down = await client.get("/health")
            assert down.status_code == 503
            assert down.headers["content-type"].startswith("application/problem+json")
            await admin.execute(f'ALTER DATABASE "{isolated_database}" ALLOW_CONNECTIONS true')
            for _ in range(50):
                if (await client.get("/health")).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert (await client.get("/health")).status_code == 200
    finally:
        await admin.close()
