"""`POST /v1/geo/market-selection` with `cells`: ranked treatment sets for several cells at once, on GeoLift's
pre-test panel (GeoLift's multi-cell walkthrough runs MultiCellMarketSelection with k = 2 on it)."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from testkit.jobs import finished_job

Client = AsyncTestClient[Litestar]
CSV = {"Content-Type": "text/csv"}
TWO_CELLS = {
    "cells": 2,
    "treatment_sizes": [2, 3],
    "durations": [15],
    "effect_sizes": [0, 0.05, 0.1, 0.15, 0.2, 0.25],
    "exclude": ["new york"],
    "search_budget": 40,
    "top": 5,
}


async def select(client: Client, dataset_id: str, **overrides: Any) -> Any:
    return await client.post("/v1/geo/market-selection", json={"dataset_id": dataset_id, **TWO_CELLS, **overrides})


async def test_each_cell_is_ranked_from_its_own_partition_and_no_market_is_in_two_cells(
    client: Client, worker: None, dataset_id: str
) -> None:
    job = await finished_job(client, (await select(client, dataset_id)).headers["location"])
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert result["candidates"] == []
    first, second = result["cells"]
    assert (first["cell"], second["cell"]) == (1, 2)
    assert not set(first["partition"]) & set(second["partition"])
    assert len(first["partition"]) + len(second["partition"]) == 39 and "new york" not in first["partition"]
    for cell in (first, second):
        assert cell["candidates"], cell["dropped"]
        assert [c["rank"] for c in cell["candidates"]] == list(range(1, len(cell["candidates"]) + 1))
        assert all(set(c["markets"]) <= set(cell["partition"]) for c in cell["candidates"])
    assert result["qualified"] == first["qualified"] + second["qualified"]


@pytest.mark.parametrize(
    ("change", "field"),
    [({"include": ["chicago"]}, "include"), ({"treatment_sizes": [19]}, "treatment_sizes"), ({"cells": 1}, "cells")],
)
async def test_a_multi_cell_selection_the_partitions_cannot_answer_is_400(
    client: Client, dataset_id: str, change: dict[str, Any], field: str
) -> None:
    response = await select(client, dataset_id, **change)
    assert response.status_code == 400, response.text
    assert response.json()["invalid_params"][0]["name"].removeprefix("$.") == field


async def test_a_rank_of_a_multi_cell_selection_becomes_a_multi_cell_experiment(
    client: Client, worker: None, dataset_id: str
) -> None:
    job = await finished_job(client, (await select(client, dataset_id)).headers["location"])
    assert job["status"] == "succeeded", job
    response = await client.post(
        f"/v1/geo/market-selection/{job['id']}/experiments", json={"rank": 1, "name": "Two cells", "channel": "media"}
    )
    assert response.status_code == 201, response.text
    experiment = response.json()
    firsts = [cell["candidates"][0]["markets"] for cell in job["result"]["cells"]]
    assert [cell["treatment_markets"] for cell in experiment["cells"]] == firsts
    assert [cell["name"] for cell in experiment["cells"]] == ["cell_1", "cell_2"]
    assert experiment["design_source"] == {"job_id": job["id"], "rank": 1}
    test = experiment["test_period"]
    assert test["start"] == "2021-04-01" and test["end"] == "2021-04-15"


async def test_a_market_excluded_from_controls_is_in_no_cells_partition_nor_the_experiment_made_of_it(
    client: Client, worker: None, dataset_id: str
) -> None:
    job = await finished_job(
        client, (await select(client, dataset_id, exclude_from_controls=["chicago"])).headers["location"]
    )
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert result["excluded_from_controls"] == ["chicago"]
    first, second = result["cells"]
    assert "chicago" not in first["partition"] + second["partition"]
    assert len(first["partition"]) + len(second["partition"]) == 38  # 40 less new york, less chicago
    response = await client.post(
        f"/v1/geo/market-selection/{job['id']}/experiments", json={"rank": 1, "name": "Two cells", "channel": "media"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["exclude_from_controls"] == ["chicago"]
