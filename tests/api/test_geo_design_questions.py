"""One computation per question for geo designs: identical geo power, market selection and matched-pair requests
made together share one computation (or one job), and a finished answer is reused, with its age, until the
dataset gets a new version or is deleted.

A request is "still computing" deterministically as the results tests make it: ``Prefer: respond-async`` with no
worker running leaves its job queued; a computation in the request is slowed down by a counting wrapper.
"""

from __future__ import annotations

import asyncio
import csv
import time
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.geo_design import service as design_service
from api.geo_design.schemas import GeoPowerRequest, GeoPowerResult
from testkit.jobs import finished_job
from tests.api.test_matched_pairs import design_csv
from tests.conftest import DATA_DIR

Client = AsyncTestClient[Litestar]
CSV = {"Content-Type": "text/csv"}
ASYNC = {"Prefer": "respond-async"}
POWER = {
    "treatment_markets": ["chicago", "portland"],
    "durations": [10],
    "effect_sizes": [0, 0.05, 0.1],
    "lookback_windows": 1,
    "alpha": 0.1,
}
SELECTION = {"treatment_sizes": [2], "durations": [10], "effect_sizes": [0, 0.1], "include": ["chicago"], "top": 2}
PAIRS = {"budgets": [30000], "pair_counts": [12], "simulations": 20}


@pytest.fixture
def computations(monkeypatch: pytest.MonkeyPatch) -> list[GeoPowerRequest]:
    """Every geo power computation started in this process, each slowed down so identical requests overlap."""
    started: list[GeoPowerRequest] = []
    real = design_service.compute_geo_power

    def counted(request: GeoPowerRequest, panel: Any, progress: Any = None) -> GeoPowerResult:
        started.append(request)
        time.sleep(0.5)
        return real(request, panel, progress)

    monkeypatch.setattr(design_service, "compute_geo_power", counted)
    return started


async def _append_a_day(client: Client, dataset_id: str) -> None:
    with (DATA_DIR / "geolift" / "GeoLift_PreTest.csv").open() as handle:
        markets = sorted({row["location"] for row in csv.DictReader(handle)})
    rows = "geo,kpi,date\n" + "".join(f"{market},3000,2021-04-01\n" for market in markets)
    appended = await client.post(f"/v1/geo/datasets/{dataset_id}/rows", content=rows, headers=CSV)
    assert appended.status_code == 201, appended.text


async def _jobs(database_url: str, kind: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM jobs WHERE kind = $1", kind))
    finally:
        await connection.close()


async def _power(client: Client, dataset_id: str, headers: dict[str, str] | None = None, **overrides: Any) -> Any:
    return await client.post("/v1/geo/power", json={"dataset_id": dataset_id, **POWER, **overrides}, headers=headers)


async def test_identical_power_requests_made_together_share_one_job(
    client: Client, database_url: str, dataset_id: str
) -> None:
    answers = await asyncio.gather(*(_power(client, dataset_id, ASYNC) for _ in range(3)))
    assert [a.status_code for a in answers] == [202, 202, 202]
    assert len({a.headers["location"] for a in answers}) == 1
    assert await _jobs(database_url, "geo_power") == 1


async def test_identical_power_requests_computed_in_the_request_share_one_computation(
    client: Client, dataset_id: str, computations: list[GeoPowerRequest]
) -> None:
    answers = await asyncio.gather(*(_power(client, dataset_id) for _ in range(3)))
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert len(computations) == 1
    assert answers[0].json() == answers[1].json() == answers[2].json()


async def test_a_finished_power_answer_is_read_back_with_its_age_without_computing(
    client: Client, database_url: str, dataset_id: str, computations: list[GeoPowerRequest]
) -> None:
    first = await _power(client, dataset_id)
    again = await _power(client, dataset_id)
    asked_async = await _power(client, dataset_id, ASYNC)
    assert "age" not in first.headers
    assert [again.status_code, asked_async.status_code] == [200, 200]
    assert int(again.headers["age"]) >= 0 and "last-modified" in again.headers
    assert again.json() == asked_async.json() == first.json()
    assert len(computations) == 1
    assert await _jobs(database_url, "geo_power") == 0


async def test_markets_spelt_in_another_case_ask_the_same_power_question(
    client: Client, dataset_id: str, computations: list[GeoPowerRequest]
) -> None:
    await _power(client, dataset_id)
    again = await _power(client, dataset_id, treatment_markets=["Chicago", "PORTLAND"])
    assert "age" in again.headers
    assert len(computations) == 1


async def test_an_append_to_the_dataset_makes_the_next_power_request_compute_afresh(
    client: Client, dataset_id: str, computations: list[GeoPowerRequest]
) -> None:
    first = await _power(client, dataset_id)
    await _append_a_day(client, dataset_id)
    after = await _power(client, dataset_id)
    assert after.status_code == 200
    assert "age" not in after.headers
    assert len(computations) == 2
    assert [first.json()["dataset_version"], after.json()["dataset_version"]] == [1, 2]


async def test_power_requests_with_other_parameters_are_other_questions(
    client: Client, database_url: str, dataset_id: str, computations: list[GeoPowerRequest]
) -> None:
    await asyncio.gather(_power(client, dataset_id), _power(client, dataset_id, alpha=0.05))
    assert len(computations) == 2
    queued = await asyncio.gather(_power(client, dataset_id, ASYNC, durations=[15]), _power(client, dataset_id, ASYNC))
    assert [q.status_code for q in queued] == [202, 200]  # the second was answered above
    assert await _jobs(database_url, "geo_power") == 1


async def test_a_finished_power_job_answers_the_next_identical_request(
    client: Client, worker: None, dataset_id: str
) -> None:
    started = await _power(client, dataset_id, ASYNC)
    assert started.status_code == 202
    job = await finished_job(client, started.headers["location"], seconds=120)
    assert job["status"] == "succeeded", job
    read = await _power(client, dataset_id)
    assert read.status_code == 200
    assert "age" in read.headers
    assert read.json() == job["result"]


async def test_deleting_the_dataset_forgets_its_kept_power_answers(client: Client, dataset_id: str) -> None:
    await _power(client, dataset_id)
    deleted = await client.delete(f"/v1/geo/datasets/{dataset_id}")
    assert deleted.json()["rows_deleted"]["kept_answers"] == 1
    assert (await _power(client, dataset_id)).status_code == 404


async def _select(client: Client, dataset_id: str, **overrides: Any) -> Any:
    return await client.post("/v1/geo/market-selection", json={"dataset_id": dataset_id, **SELECTION, **overrides})


async def test_identical_selections_made_together_share_one_job(
    client: Client, database_url: str, dataset_id: str
) -> None:
    answers = await asyncio.gather(*(_select(client, dataset_id) for _ in range(3)))
    assert [a.status_code for a in answers] == [202, 202, 202]
    assert len({a.headers["location"] for a in answers}) == 1
    assert await _jobs(database_url, "geo_market_selection") == 1


async def test_identical_multi_cell_selections_made_together_share_one_job(
    client: Client, database_url: str, dataset_id: str
) -> None:
    cells = {"cells": 2, "include": [], "treatment_sizes": [2], "durations": [10]}
    answers = await asyncio.gather(*(_select(client, dataset_id, **cells) for _ in range(3)))
    assert [a.status_code for a in answers] == [202, 202, 202]
    assert len({a.headers["location"] for a in answers}) == 1
    assert await _jobs(database_url, "geo_market_selection") == 1


async def test_selections_with_other_parameters_are_other_jobs(
    client: Client, database_url: str, dataset_id: str
) -> None:
    answers = await asyncio.gather(_select(client, dataset_id), _select(client, dataset_id, alpha=0.05))
    assert len({a.headers["location"] for a in answers}) == 2
    assert await _jobs(database_url, "geo_market_selection") == 2


async def test_a_finished_selection_answers_an_identical_request_with_its_job_and_age(
    client: Client, worker: None, database_url: str, dataset_id: str
) -> None:
    started = await _select(client, dataset_id)
    job = await finished_job(client, started.headers["location"], seconds=120)
    assert job["status"] == "succeeded", job
    again = await _select(client, dataset_id, include=["CHICAGO"])
    assert again.status_code == 200
    assert again.headers["location"] == started.headers["location"]
    assert int(again.headers["age"]) >= 0 and "last-modified" in again.headers
    assert again.json()["result"] == job["result"]
    assert await _jobs(database_url, "geo_market_selection") == 1
    made = await client.post(
        f"/v1/geo/market-selection/{again.json()['id']}/experiments", json={"rank": 1, "name": "TV", "channel": "tv"}
    )
    assert made.status_code == 201, made.text


async def test_an_append_makes_an_identical_selection_a_new_job(
    client: Client, worker: None, database_url: str, dataset_id: str
) -> None:
    started = await _select(client, dataset_id)
    assert (await finished_job(client, started.headers["location"], seconds=120))["status"] == "succeeded"
    await _append_a_day(client, dataset_id)
    after = await _select(client, dataset_id)
    assert after.status_code == 202
    assert after.headers["location"] != started.headers["location"]
    assert await _jobs(database_url, "geo_market_selection") == 2


@pytest.fixture
async def pairs_dataset_id(client: Client) -> str:
    """24 geos (12 pairs) of trimmed_match's design example over 2020-10-01..2020-12-29."""
    upload = await client.post("/v1/geo/datasets", content=design_csv(geos=24, since="2020-10-01"), headers=CSV)
    assert upload.status_code == 201, upload.text
    return str(upload.json()["id"])


async def _pairs(client: Client, dataset_id: str, **overrides: Any) -> Any:
    return await client.post("/v1/geo/matched-pairs", json={"dataset_id": dataset_id, **PAIRS, **overrides})


async def test_identical_matched_pair_designs_made_together_share_one_job_even_without_a_seed(
    client: Client, database_url: str, pairs_dataset_id: str
) -> None:
    answers = await asyncio.gather(*(_pairs(client, pairs_dataset_id) for _ in range(3)))
    assert [a.status_code for a in answers] == [202, 202, 202]
    assert len({a.headers["location"] for a in answers}) == 1
    assert await _jobs(database_url, "geo_matched_pairs") == 1


async def test_matched_pair_designs_with_another_seed_are_other_jobs(
    client: Client, database_url: str, pairs_dataset_id: str
) -> None:
    answers = await asyncio.gather(_pairs(client, pairs_dataset_id, seed=1), _pairs(client, pairs_dataset_id, seed=2))
    assert len({a.headers["location"] for a in answers}) == 2
    assert await _jobs(database_url, "geo_matched_pairs") == 2


async def test_a_finished_matched_pair_design_answers_an_identical_request_with_its_job_and_age(
    client: Client, worker: None, database_url: str, pairs_dataset_id: str
) -> None:
    started = await _pairs(client, pairs_dataset_id)
    job = await finished_job(client, started.headers["location"], seconds=120)
    assert job["status"] == "succeeded", job
    again = await _pairs(client, pairs_dataset_id)
    assert again.status_code == 200
    assert again.headers["location"] == started.headers["location"]
    assert "age" in again.headers
    assert again.json()["result"]["seed"] == job["result"]["seed"]
    assert await _jobs(database_url, "geo_matched_pairs") == 1
