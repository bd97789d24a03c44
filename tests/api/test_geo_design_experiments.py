"""A market selection's candidate becomes a geo experiment in one call, linked to its design.

The selection is computed by its three queued steps (plan, evaluate each chunk, rank) run in the test
on GeoLift's walkthrough history (``GeoLift_PreTest``: 2021-01-01..2021-03-31).
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.geo_design import tasks
from api.geo_design.schemas import MarketSelectionRequest
from testkit.panels import pretest_csv

Client = AsyncTestClient[Litestar]
CSV = {"Content-Type": "text/csv"}


@pytest.fixture
async def selection(client: Client, pool: asyncpg.Pool) -> tuple[uuid.UUID, dict[str, Any]]:
    upload = await client.post("/v1/geo/datasets", content=pretest_csv(), headers=CSV)
    assert upload.status_code == 201, upload.text
    request = MarketSelectionRequest(
        dataset_id=uuid.UUID(upload.json()["id"]),
        treatment_sizes=[2, 3],
        durations=[10, 15],
        effect_sizes=[0.0, 0.05, 0.1, 0.15, 0.2],
        include=["chicago"],
        exclude=["honolulu"],
        cost_per_kpi=7.5,
        search_budget=0,
    )
    payload = msgspec.json.encode(request)
    job_id = uuid.uuid4()
    parts = [
        await tasks.evaluate_chunk(pool, chunk, lambda _: None) for chunk in await tasks.plan_chunks(pool, payload)
    ]
    result = msgspec.json.decode(await tasks.rank_chunks(pool, job_id, payload, parts))
    return job_id, result


async def test_a_candidate_becomes_a_draft_geo_experiment_with_its_markets_and_link(
    client: Client, selection: tuple[uuid.UUID, dict[str, Any]]
) -> None:
    job_id, result = selection
    first = result["candidates"][0]
    response = await client.post(
        f"/v1/geo/market-selection/{job_id}/experiments", json={"rank": 1, "name": "TV test", "channel": "tv"}
    )
    assert response.status_code == 201, response.text
    experiment = response.json()
    assert experiment["status"] == "draft"
    assert experiment["treatment_markets"] == first["markets"]
    assert experiment["dataset_id"] == result["dataset_id"]
    assert experiment["design_source"] == {"job_id": str(job_id), "rank": 1}
    assert experiment["pre_period"] == {"start": "2021-01-01", "end": "2021-03-31"}
    assert experiment["test_period"]["start"] == "2021-04-01"
    assert response.headers["location"] == f"/v1/experiments/{experiment['id']}"
    stored = await client.get(response.headers["location"])
    assert stored.json()["design_source"] == {"job_id": str(job_id), "rank": 1}


async def test_the_default_test_period_lasts_the_candidates_duration(
    client: Client, selection: tuple[uuid.UUID, dict[str, Any]]
) -> None:
    job_id, result = selection
    second = result["candidates"][1]
    response = await client.post(
        f"/v1/geo/market-selection/{job_id}/experiments", json={"rank": 2, "name": "TV", "channel": "tv"}
    )
    test = response.json()["test_period"]
    last_day = {10: "2021-04-10", 15: "2021-04-15"}[second["duration"]]
    assert test == {"start": "2021-04-01", "end": last_day}


async def test_a_test_period_of_another_length_is_refused(
    client: Client, selection: tuple[uuid.UUID, dict[str, Any]]
) -> None:
    job_id, _ = selection
    response = await client.post(
        f"/v1/geo/market-selection/{job_id}/experiments",
        json={"rank": 1, "name": "TV", "channel": "tv", "test_period": {"start": "2021-04-01", "end": "2021-04-30"}},
    )
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "test_period"


async def test_a_rank_beyond_the_list_is_refused_naming_rank(
    client: Client, selection: tuple[uuid.UUID, dict[str, Any]]
) -> None:
    job_id, result = selection
    rank = len(result["candidates"]) + 1
    response = await client.post(
        f"/v1/geo/market-selection/{job_id}/experiments", json={"rank": rank, "name": "TV", "channel": "tv"}
    )
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "rank"


async def test_an_unknown_selection_is_404(client: Client) -> None:
    response = await client.post(
        f"/v1/geo/market-selection/{uuid.uuid4()}/experiments", json={"rank": 1, "name": "TV", "channel": "tv"}
    )
    assert response.status_code == 404


async def test_a_retry_with_the_same_idempotency_key_returns_the_first_experiment(
    client: Client, selection: tuple[uuid.UUID, dict[str, Any]]
) -> None:
    job_id, _ = selection
    path = f"/v1/geo/market-selection/{job_id}/experiments"
    body = {"rank": 1, "name": "TV", "channel": "tv"}
    first = await client.post(path, json=body, headers={"Idempotency-Key": "design-1"})
    again = await client.post(path, json=body, headers={"Idempotency-Key": "design-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"


async def test_an_idempotency_key_reused_with_another_body_is_422(
    client: Client, selection: tuple[uuid.UUID, dict[str, Any]]
) -> None:
    job_id, _ = selection
    path = f"/v1/geo/market-selection/{job_id}/experiments"
    await client.post(path, json={"rank": 1, "name": "TV", "channel": "tv"}, headers={"Idempotency-Key": "d"})
    other = await client.post(
        path, json={"rank": 1, "name": "radio", "channel": "tv"}, headers={"Idempotency-Key": "d"}
    )
    assert other.status_code == 422
    assert other.json()["invalid_params"][0]["name"] == "Idempotency-Key"


async def test_the_ranked_result_is_stored_for_experiments_to_link_to(
    pool: asyncpg.Pool, selection: tuple[uuid.UUID, dict[str, Any]]
) -> None:
    job_id, result = selection
    async with pool.acquire() as connection:
        count = await connection.fetchval("SELECT count(*) FROM geo_market_selections WHERE id = $1", job_id)
        stored = await connection.fetchval("SELECT result FROM geo_market_selections WHERE id = $1", job_id)
    assert count == 1
    assert stored["candidates"][0]["markets"] == result["candidates"][0]["markets"]
