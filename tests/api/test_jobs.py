"""Slow results become jobs: 202 with a Location, progress and the result or problem kept in PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.jobs.runner import JobCancelled, ProgressReporter, preferred_wait
from api.settings import Settings
from tests.api.test_geo_results import geolift_csv

Client = AsyncTestClient[Litestar]
ASYNC = {"Prefer": "respond-async"}


async def _geo_experiment(client: Client, test_end: str = "2021-04-15") -> str:
    upload = await client.post("/v1/geo/datasets", content=geolift_csv(), headers={"Content-Type": "text/csv"})
    assert upload.status_code == 201, upload.text
    body = {
        "kind": "geo",
        "name": "TV in Chicago and Portland",
        "dataset_id": upload.json()["id"],
        "channel": "tv",
        "treatment_markets": ["chicago", "portland"],
        "pre_period": {"start": "2021-01-01", "end": "2021-03-31"},
        "test_period": {"start": "2021-04-01", "end": test_end},
    }
    created = await client.post("/v1/experiments", json=body)
    assert created.status_code == 201, created.text
    experiment_id: str = created.json()["id"]
    return experiment_id


async def _insert_silent_job(database_url: str) -> uuid.UUID:
    """A running job whose worker last reported an hour ago."""
    job_id = uuid.uuid4()
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            "INSERT INTO jobs (id, kind, subject, status, progress, heartbeat_at) "
            "VALUES ($1, 'experiment_results', '/v1/experiments/x/results', 'running', 0.4, now() - interval '1 hour')",
            job_id,
        )
    finally:
        await connection.close()
    return job_id


async def _finished(client: Client, location: str) -> dict[str, Any]:
    for _ in range(600):
        job: dict[str, Any] = (await client.get(location)).json()
        if job["status"] != "running":
            return job
        await asyncio.sleep(0.05)
    raise AssertionError("the job did not finish in 30 s")


async def test_respond_async_answers_202_with_the_job_and_its_location(client: Client) -> None:
    experiment_id = await _geo_experiment(client)
    response = await client.get(f"/v1/experiments/{experiment_id}/results", headers=ASYNC)
    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "running"
    assert job["subject"] == f"/v1/experiments/{experiment_id}/results"


async def test_a_finished_job_holds_the_same_result_as_the_synchronous_answer(client: Client) -> None:
    experiment_id = await _geo_experiment(client)
    direct = (await client.get(f"/v1/experiments/{experiment_id}/results")).json()
    started = await client.get(f"/v1/experiments/{experiment_id}/results", headers=ASYNC)
    job = await _finished(client, started.headers["location"])
    assert job["status"] == "succeeded"
    assert job["progress"] == 1.0
    assert job["finished_at"] is not None
    assert job["result"] == direct


async def test_a_failing_job_keeps_the_problem_the_request_would_have_answered(client: Client) -> None:
    experiment_id = await _geo_experiment(client, test_end="2021-09-30")
    started = await client.get(f"/v1/experiments/{experiment_id}/results", headers=ASYNC)
    job = await _finished(client, started.headers["location"])
    assert job["status"] == "failed"
    assert job["error"]["status"] == 409
    assert job["result"] is None
    direct = await client.get(f"/v1/experiments/{experiment_id}/results")
    assert direct.status_code == 409
    assert job["error"]["detail"] == direct.json()["detail"]


async def test_errors_found_before_the_computation_starts_are_answered_directly(client: Client) -> None:
    response = await client.get(f"/v1/experiments/{uuid.uuid4()}/results", headers=ASYNC)
    assert response.status_code == 404


async def test_a_quick_computation_is_answered_within_the_request(client: Client) -> None:
    experiment_id = await _geo_experiment(client)
    response = await client.get(f"/v1/experiments/{experiment_id}/results", headers={"Prefer": "wait=60"})
    assert response.status_code == 200
    assert response.json()["kind"] == "geo"


async def test_jobs_are_stored_in_postgres_and_readable_by_another_instance(client: Client, settings: Settings) -> None:
    experiment_id = await _geo_experiment(client)
    started = await client.get(f"/v1/experiments/{experiment_id}/results", headers=ASYNC)
    await _finished(client, started.headers["location"])
    async with AsyncTestClient(app=create_app(settings)) as other:
        other.headers["Authorization"] = client.headers["Authorization"]
        job = (await other.get(started.headers["location"])).json()
    assert job["status"] == "succeeded"
    assert job["result"]["experiment_id"] == experiment_id


async def test_a_running_job_whose_heartbeat_stopped_reads_as_failed(client: Client, database_url: str) -> None:
    job_id = await _insert_silent_job(database_url)
    job = (await client.get(f"/v1/jobs/{job_id}")).json()
    assert job["status"] == "failed"
    assert job["error"]["status"] == 500
    assert "stopped before it finished" in job["error"]["detail"]
    assert job["finished_at"] is not None


async def test_a_failed_stale_job_stays_failed_when_its_worker_reports_late(client: Client, database_url: str) -> None:
    job_id = await _insert_silent_job(database_url)
    await client.get(f"/v1/jobs/{job_id}")
    connection = await asyncpg.connect(database_url)
    try:
        late = await connection.execute(
            "UPDATE jobs SET status = 'succeeded', result = '{}' WHERE id = $1 AND status = 'running'", job_id
        )
    finally:
        await connection.close()
    assert late == "UPDATE 0"
    assert (await client.get(f"/v1/jobs/{job_id}")).json()["status"] == "failed"


async def test_a_stored_result_keeps_the_order_of_its_keys(client: Client) -> None:
    experiment_id = await _geo_experiment(client)
    direct = await client.get(f"/v1/experiments/{experiment_id}/results")
    started = await client.get(f"/v1/experiments/{experiment_id}/results", headers=ASYNC)
    job = await _finished(client, started.headers["location"])
    assert list(job["result"]["weights"]) == list(direct.json()["weights"])


def test_the_202_answer_documents_its_location_header(app: Litestar) -> None:
    operation = app.openapi_schema.to_schema()["paths"]["/v1/experiments/{experiment_id}/results"]["get"]
    assert "Location" in operation["responses"]["202"]["headers"]


async def test_an_unknown_job_is_a_404_problem(client: Client) -> None:
    response = await client.get(f"/v1/jobs/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    ("prefer", "seconds"),
    [
        (None, None),
        ("respond-async", 0.0),
        ("respond-async, wait=10", 10.0),
        ("wait=5", 5.0),
        ("return=minimal", None),
        ("wait=999999", 3600.0),
    ],
)
def test_the_prefer_header_sets_how_long_a_request_waits(prefer: str | None, seconds: float | None) -> None:
    assert preferred_wait(prefer) == seconds


def test_a_cancelled_job_stops_its_worker_at_the_next_progress_report() -> None:
    progress = ProgressReporter()
    progress(0.3)
    progress.cancel()
    with pytest.raises(JobCancelled):
        progress(0.4)
    assert progress.fraction == 0.3


async def test_jobs_finished_more_than_30_days_ago_are_forgotten_at_start_up(
    client: Client, settings: Settings, database_url: str
) -> None:
    old, recent = uuid.uuid4(), uuid.uuid4()
    connection = await asyncpg.connect(database_url)
    try:
        for job_id, age in ((old, timedelta(days=31)), (recent, timedelta(days=29))):
            await connection.execute(
                "INSERT INTO jobs (id, kind, subject, status, error, finished_at) VALUES ($1, 'experiment_results', "
                '\'/x\', \'failed\', \'{"type": "about:blank", "title": "Conflict", "status": 409, '
                '"detail": "missing data"}\', now() - $2::interval)',
                job_id,
                age,
            )
        async with AsyncTestClient(app=create_app(settings)) as fresh:
            fresh.headers["Authorization"] = client.headers["Authorization"]
            assert (await fresh.get(f"/v1/jobs/{old}")).status_code == 404
            assert (await fresh.get(f"/v1/jobs/{recent}")).status_code == 200
    finally:
        await connection.close()
