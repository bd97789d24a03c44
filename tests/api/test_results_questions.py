"""One computation per question: identical results requests made together share one computation (or one
job), and a finished answer is read back, with its age, until the experiment's data or settings change."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from api.jobs.progress import ProgressReporter
from api.results import service as results_service
from tests.api.helpers import Client, create_experiment

UNITS = [f"user-{i}" for i in range(600)]


async def _experiment_with_outcomes(client: Client) -> str:
    body = {
        "kind": "holdout",
        "name": "questions",
        "metric": {"kind": "proportion"},
        "channels": [{"name": "meta", "holdout_fraction": 0.3}, {"name": "search", "holdout_fraction": 0.2}],
        "salt": "questions-salt",
    }
    experiment_id = await create_experiment(client, body)
    assert (await client.post(f"/v1/experiments/{experiment_id}/assignments", json={"units": UNITS})).status_code == 200
    outcomes = [{"unit": u, "value": int(i % 9 == 0)} for i, u in enumerate(UNITS)]
    response = await client.post(f"/v1/experiments/{experiment_id}/outcomes", json={"outcomes": outcomes})
    assert response.status_code == 200, response.text
    return experiment_id


@pytest.fixture
def computations(monkeypatch: pytest.MonkeyPatch) -> list[results_service.ResultsQuery]:
    """Every results computation started in this process, each slowed down so identical requests overlap."""
    started: list[results_service.ResultsQuery] = []
    real = results_service.compute_results

    async def counted(
        pool: asyncpg.Pool, query: results_service.ResultsQuery, progress: ProgressReporter
    ) -> results_service.ExperimentResults:
        started.append(query)
        await asyncio.sleep(0.5)
        return await real(pool, query, progress)

    monkeypatch.setattr(results_service, "compute_results", counted)
    return started


async def _results(client: Client, experiment_id: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
    return await client.get(f"/v1/experiments/{experiment_id}/results", params=params, headers=headers or {})


async def test_identical_requests_made_together_share_one_computation(client: Client, computations: list[Any]) -> None:
    experiment_id = await _experiment_with_outcomes(client)
    answers = await asyncio.gather(*(_results(client, experiment_id, confidence_level=0.9) for _ in range(3)))
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert len(computations) == 1
    assert answers[0].json() == answers[1].json() == answers[2].json()


async def test_requests_with_other_parameters_are_other_questions(client: Client, computations: list[Any]) -> None:
    experiment_id = await _experiment_with_outcomes(client)
    await asyncio.gather(_results(client, experiment_id, confidence_level=0.9), _results(client, experiment_id))
    assert len(computations) == 2


async def test_identical_requests_that_became_jobs_share_one_job(client: Client, database_url: str) -> None:
    experiment_id = await _experiment_with_outcomes(client)
    asynchronous = {"Prefer": "respond-async"}
    answers = await asyncio.gather(*(_results(client, experiment_id, asynchronous) for _ in range(3)))
    assert [a.status_code for a in answers] == [202, 202, 202]
    assert len({a.json()["id"] for a in answers}) == 1
    connection = await asyncpg.connect(database_url)
    try:
        jobs = await connection.fetchval("SELECT count(*) FROM jobs WHERE kind = 'experiment_results'")
    finally:
        await connection.close()
    assert jobs == 1


async def test_a_finished_answer_is_read_back_with_its_age_without_computing(
    client: Client, computations: list[Any]
) -> None:
    experiment_id = await _experiment_with_outcomes(client)
    first = await _results(client, experiment_id)
    again = await _results(client, experiment_id)
    assert "age" not in first.headers
    assert int(again.headers["age"]) >= 0
    assert "last-modified" in again.headers
    assert again.json() == first.json()
    assert len(computations) == 1


@pytest.mark.parametrize("write", ["outcomes", "assignments", "spend", "settings"])
async def test_a_write_to_the_experiment_makes_the_next_read_compute_afresh(
    client: Client, computations: list[Any], write: str
) -> None:
    experiment_id = await _experiment_with_outcomes(client)
    first = await _results(client, experiment_id)
    path = f"/v1/experiments/{experiment_id}"
    if write == "outcomes":
        changed = await client.post(f"{path}/outcomes", json={"outcomes": [{"unit": UNITS[1], "value": 1}]})
    elif write == "assignments":
        changed = await client.post(f"{path}/assignments", json={"units": ["user-new"]})
    elif write == "spend":
        changed = await client.put(f"{path}/spend", json={"channels": [{"channel": "meta", "spend": 100.0}]})
    else:
        changed = await client.patch(path, json={"name": "renamed"})
    assert changed.status_code == 200, changed.text
    after = await _results(client, experiment_id)
    assert after.status_code == 200
    assert "age" not in after.headers
    assert len(computations) == 2
    if write in ("outcomes", "spend"):
        assert after.json() != first.json()


async def test_reading_an_assigned_unit_back_keeps_the_answer(client: Client, computations: list[Any]) -> None:
    experiment_id = await _experiment_with_outcomes(client)
    await _results(client, experiment_id)
    read_back = await client.post(f"/v1/experiments/{experiment_id}/assignments", json={"units": UNITS[:5]})
    assert read_back.status_code == 200
    assert "age" in (await _results(client, experiment_id)).headers
    assert len(computations) == 1


async def test_a_kept_sequential_answer_is_not_a_new_look(client: Client, database_url: str) -> None:
    experiment_id = await _experiment_with_outcomes(client)
    first = await _results(client, experiment_id, sequential="true")
    again = await _results(client, experiment_id, sequential="true")
    assert again.json() == first.json()
    looks = "SELECT count(*), max(looked_at) FROM sequential_looks WHERE experiment_id = $1"
    connection = await asyncpg.connect(database_url)
    try:
        before = await connection.fetchrow(looks, uuid.UUID(experiment_id))
        assert before is not None
        assert before["count"] == 2  # one per channel, from the first read
        await client.post(
            f"/v1/experiments/{experiment_id}/outcomes", json={"outcomes": [{"unit": UNITS[1], "value": 1}]}
        )
        await _results(client, experiment_id, sequential="true")
        after = await connection.fetchrow(looks, uuid.UUID(experiment_id))
    finally:
        await connection.close()
    assert after is not None
    assert after["count"] == 4
    assert after["max"] > before["max"]


async def test_a_finished_job_answers_the_next_identical_read(client: Client, worker: None) -> None:
    experiment_id = await _experiment_with_outcomes(client)
    started = await _results(client, experiment_id, {"Prefer": "respond-async"})
    assert started.status_code == 202
    for _ in range(1200):
        job = (await client.get(started.headers["location"])).json()
        if job["status"] not in ("queued", "running"):
            break
        await asyncio.sleep(0.05)
    assert job["status"] == "succeeded"
    read = await _results(client, experiment_id)
    assert read.status_code == 200
    assert "age" in read.headers
    assert read.json() == job["result"]
