"""Geo experiments that would run in the same markets at the same time as a running one are refused (409).

GeoLift issue #174 asks for this: two tests in one market at once measure each other's campaigns.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.api.helpers import sixty_day_dataset

Client = AsyncTestClient[Litestar]
MARKETS = ["austin", "boston", "chicago", "denver", "el paso", "fresno"]


@pytest.fixture
async def dataset_id(client: Client) -> str:
    return await sixty_day_dataset(client, MARKETS, "six markets")


async def create(client: Client, dataset_id: str, markets: list[str], test: tuple[str, str], **extra: Any) -> Any:
    body = {
        "kind": "geo",
        "name": f"test in {', '.join(markets)}",
        "dataset_id": dataset_id,
        "channel": "tv",
        "treatment_markets": markets,
        "pre_period": {"start": "2026-01-01", "end": "2026-01-31"},
        "test_period": {"start": test[0], "end": test[1]},
        **extra,
    }
    return await client.post("/v1/experiments", json=body)


async def running(client: Client, dataset_id: str, markets: list[str], test: tuple[str, str]) -> str:
    created = await create(client, dataset_id, markets, test)
    assert created.status_code == 201, created.text
    experiment_id = str(created.json()["id"])
    started = await client.patch(f"/v1/experiments/{experiment_id}", json={"status": "running"})
    assert started.status_code == 200, started.text
    return experiment_id


async def test_overlapping_markets_and_dates_are_refused_naming_the_running_experiment(
    client: Client, dataset_id: str
) -> None:
    other = await running(client, dataset_id, ["austin", "boston"], ("2026-02-01", "2026-02-14"))
    response = await create(client, dataset_id, ["boston", "chicago"], ("2026-02-10", "2026-02-20"))
    assert response.status_code == 409
    problem = response.json()
    assert other in problem["detail"]
    assert "boston" in problem["detail"]
    assert problem["invalid_params"][0]["name"] == "treatment_markets"


async def test_the_same_markets_after_the_running_test_ends_are_accepted(client: Client, dataset_id: str) -> None:
    await running(client, dataset_id, ["austin", "boston"], ("2026-02-01", "2026-02-14"))
    response = await create(client, dataset_id, ["austin", "boston"], ("2026-02-15", "2026-02-28"))
    assert response.status_code == 201, response.text


async def test_other_markets_at_the_same_time_are_accepted(client: Client, dataset_id: str) -> None:
    await running(client, dataset_id, ["austin", "boston"], ("2026-02-01", "2026-02-14"))
    response = await create(client, dataset_id, ["chicago", "denver"], ("2026-02-01", "2026-02-14"))
    assert response.status_code == 201, response.text


async def test_a_matched_pair_control_counts_as_a_used_market(client: Client, dataset_id: str) -> None:
    created = await create(client, dataset_id, ["austin"], ("2026-02-01", "2026-02-14"), pairs=[["austin", "fresno"]])
    await client.patch(f"/v1/experiments/{created.json()['id']}", json={"status": "running"})
    response = await create(client, dataset_id, ["fresno"], ("2026-02-05", "2026-02-09"))
    assert response.status_code == 409


async def test_starting_a_draft_that_overlaps_a_running_test_is_refused(client: Client, dataset_id: str) -> None:
    draft = await create(client, dataset_id, ["chicago"], ("2026-02-01", "2026-02-14"))
    await running(client, dataset_id, ["chicago", "denver"], ("2026-02-07", "2026-02-21"))
    response = await client.patch(f"/v1/experiments/{draft.json()['id']}", json={"status": "running"})
    assert response.status_code == 409
    assert (await client.get(f"/v1/experiments/{draft.json()['id']}")).json()["status"] == "draft"


async def test_a_stopped_experiment_no_longer_collides(client: Client, dataset_id: str) -> None:
    other = await running(client, dataset_id, ["austin", "boston"], ("2026-02-01", "2026-02-14"))
    await client.patch(f"/v1/experiments/{other}", json={"status": "stopped"})
    response = await create(client, dataset_id, ["austin"], ("2026-02-01", "2026-02-14"))
    assert response.status_code == 201, response.text
