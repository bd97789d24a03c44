"""``GET /v1/jobs``: every job, newest first, a page at a time, filtered by kind and status."""

from __future__ import annotations

import typing
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.jobs.schemas import JobKind
from api.worker_tasks import task_registry

Client = AsyncTestClient[Litestar]
START = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
# (kind, status) of the jobs stored, oldest first, one minute apart.
JOBS = [
    ("experiment_results", "succeeded"),
    ("geo_power", "failed"),
    ("experiment_results", "running"),
    ("geo_market_selection", "queued"),
    ("experiment_results", "succeeded"),
]


@pytest.fixture
async def stored_jobs(client: Client, database_url: str) -> AsyncIterator[list[str]]:
    """The ids of :data:`JOBS`, oldest first."""
    connection = await asyncpg.connect(database_url)
    ids = [str(uuid.uuid4()) for _ in JOBS]
    try:
        for index, ((kind, status), job_id) in enumerate(zip(JOBS, ids, strict=True)):
            await connection.execute(
                "INSERT INTO jobs (id, kind, subject, status, result, error, created_at, workspace) "
                "VALUES ($1, $2, $3, $4, $5::text::json, $6::text::json, $7, 'default')",
                job_id,
                kind,
                f"/v1/experiments/{uuid.uuid4()}/results",
                status,
                '{"kind": "holdout"}' if status == "succeeded" else None,
                '{"status": 409}' if status == "failed" else None,
                START + timedelta(minutes=index),
            )
        yield ids
    finally:
        await connection.close()


async def listed(client: Client, **params: Any) -> dict[str, Any]:
    response = await client.get("/v1/jobs", params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def test_jobs_are_listed_newest_first_a_page_at_a_time(client: Client, stored_jobs: list[str]) -> None:
    seen: list[str] = []
    page = await listed(client, limit=2)
    while True:
        seen.extend(item["id"] for item in page["items"])
        if page["next_cursor"] is None:
            break
        page = await listed(client, limit=2, cursor=page["next_cursor"])
    assert seen == list(reversed(stored_jobs))


async def test_jobs_are_filtered_by_kind(client: Client, stored_jobs: list[str]) -> None:
    page = await listed(client, kind="experiment_results")
    expected = [job_id for job_id, (kind, _) in zip(stored_jobs, JOBS, strict=True) if kind == "experiment_results"]
    assert [item["id"] for item in page["items"]] == list(reversed(expected))


async def test_jobs_are_filtered_by_kind_and_status_together(client: Client, stored_jobs: list[str]) -> None:
    page = await listed(client, kind="experiment_results", status="succeeded", limit=1)
    assert [item["id"] for item in page["items"]] == [stored_jobs[4]]
    following = await listed(client, kind="experiment_results", status="succeeded", cursor=page["next_cursor"])
    assert [item["id"] for item in following["items"]] == [stored_jobs[0]]
    assert following["next_cursor"] is None


async def test_a_listed_job_carries_its_status_but_not_its_result(client: Client, stored_jobs: list[str]) -> None:
    (item,) = (await listed(client, status="failed"))["items"]
    assert item["id"] == stored_jobs[1] and item["kind"] == "geo_power" and item["status"] == "failed"
    assert "result" not in item and "error" not in item


@pytest.mark.parametrize(("parameter", "value"), [("kind", "bitcoin_mining"), ("status", "paused"), ("cursor", "%%")])
async def test_an_unknown_filter_value_is_400_naming_the_parameter(client: Client, parameter: str, value: str) -> None:
    response = await client.get("/v1/jobs", params={parameter: value})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [p["name"] for p in response.json()["invalid_params"]] == [parameter]


def test_the_kind_filter_knows_exactly_the_kinds_workers_run() -> None:
    assert set(typing.get_args(JobKind)) == set(task_registry().jobs)


def test_every_job_task_names_the_types_of_its_answers() -> None:
    """The document's union of a job's results is assembled from them (``api.jobs`` names no resource)."""
    assert {kind: bool(answers) for kind, answers in task_registry().job_answers.items()} == dict.fromkeys(
        typing.get_args(JobKind), True
    )
