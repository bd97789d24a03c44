"""``GET /health``: up when the database answers, 503 while it cannot be reached, recovering by itself."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.health.controller import Health, QueueHealth, WorkerHealth, stalled
from api.settings import Settings
from testkit.database import with_database
from tests.conftest import LogCollector

Client = AsyncTestClient[Litestar]


async def test_health_is_ok_when_the_database_answers(client: Client) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "workers": {"live": 0, "last_heartbeat": None},
        "queue": {"queued": 0, "oldest_queued_seconds": None},
    }


async def _queue_job_created_ago(database_url: str, seconds: float) -> None:
    """A queued job row as old as ``seconds`` (as a request made then would have left it)."""
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(
            "INSERT INTO jobs (id, kind, subject, status, created_at, workspace) "
            "VALUES ($1, 'geo_results', 'health-test', 'queued', clock_timestamp() - $2::interval, 'default')",
            uuid.uuid4(),
            timedelta(seconds=seconds),
        )
    finally:
        await admin.close()


async def test_health_counts_a_running_worker_and_its_heartbeat(client: Client, worker: None) -> None:
    for _ in range(100):  # until the worker has connected and written its first heartbeat
        body = (await client.get("/health")).json()
        if body["workers"]["live"] == 1:
            break
        await asyncio.sleep(0.1)
    assert body["workers"]["live"] == 1
    assert datetime.fromisoformat(body["workers"]["last_heartbeat"]) <= datetime.now(UTC)


async def test_a_job_queued_past_the_threshold_with_no_live_worker_is_503(client: Client, database_url: str) -> None:
    await _queue_job_created_ago(database_url, 61.0)  # the default threshold is 60 s
    response = await client.get("/health")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    detail = response.json()["detail"]
    assert "No worker is alive (none has ever run)" in detail
    assert "a job has waited 61 s in the queue" in detail


async def test_a_job_queued_for_less_than_the_threshold_is_reported_but_healthy(
    client: Client, database_url: str
) -> None:
    await _queue_job_created_ago(database_url, 30.0)
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json()["queue"]["queued"] == 1
    assert 30.0 <= response.json()["queue"]["oldest_queued_seconds"] < 60.0


def test_an_old_queue_with_a_live_worker_is_a_backlog_not_a_fault() -> None:
    busy = Health(workers=WorkerHealth(live=1), queue=QueueHealth(queued=5, oldest_queued_seconds=600.0))
    assert stalled(busy, 60.0) is None
    idle = Health(workers=WorkerHealth(live=0), queue=QueueHealth(queued=5, oldest_queued_seconds=600.0))
    assert stalled(idle, 60.0) is not None


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
