"""Market names as people type them: matched regardless of case (GeoLift lower-cases every location),
answered in the dataset's spelling, an unknown one refused with the closest known names, and a dataset
holding two markets that differ only by case refused at upload."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.geo.markets import MarketNames, case_variants
from api.http.errors import InvalidInput
from testkit.panels import pretest_csv
from tests.api.helpers import create_geolift_experiment

Client = AsyncTestClient[Litestar]
CSV = {"Content-Type": "text/csv"}
DATASET = "00000000-0000-4000-8000-000000000000"


def test_names_are_matched_regardless_of_case_and_an_exact_spelling_wins() -> None:
    names = MarketNames(["chicago", "New York", "portland"], DATASET)
    resolved = names.resolve("treatment_markets", ["CHICAGO", "new york", "Portland"])
    assert resolved == ["chicago", "New York", "portland"]
    assert names.canonical("atlantis") == "atlantis"


def test_an_unknown_name_is_refused_with_the_closest_known_names() -> None:
    names = MarketNames(["chicago", "cincinnati", "portland", "phoenix"], DATASET)
    with pytest.raises(InvalidInput) as refused:
        names.resolve("include", ["chicgo"])
    field, reason = refused.value.invalid_params[0]
    assert field == "include"
    assert "'chicgo' (closest: 'chicago')" in reason


def test_a_name_close_to_none_lists_some_known_names() -> None:
    names = MarketNames([f"market {i:02d}" for i in range(12)], DATASET)
    with pytest.raises(InvalidInput) as refused:
        names.resolve("exclude", ["zz"])
    assert "'market 00', 'market 01'" in refused.value.invalid_params[0][1]
    assert "(12 in all)" in refused.value.invalid_params[0][1]


def test_case_variants_are_grouped_in_order_of_appearance() -> None:
    assert case_variants(["Chicago", "portland", "chicago", "CHICAGO", "Portland"]) == [
        ["Chicago", "chicago", "CHICAGO"],
        ["portland", "Portland"],
    ]
    assert case_variants(["a", "b", "a"]) == []


async def test_an_upload_with_two_markets_differing_only_by_case_is_refused(client: Client) -> None:
    body = "date,geo,kpi\n2024-01-01,Chicago,1\n2024-01-01,portland,2\n2024-01-02,chicago,3\n2024-01-02,portland,4\n"
    response = await client.post("/v1/geo/datasets", content=body, headers=CSV)
    assert response.status_code == 400
    (param,) = response.json()["invalid_params"]
    assert param["name"] == "line 4, column geo"
    assert "'chicago' differs from the market 'Chicago' only by case" in param["reason"]
    rows = [
        {"date": "2024-01-01", "geo": "Paris", "kpi": 1},
        {"date": "2024-01-01", "geo": "PARIS", "kpi": 2},
        {"date": "2024-01-01", "geo": "lyon", "kpi": 2},
    ]
    json_upload = await client.post("/v1/geo/datasets", json={"rows": rows})
    assert json_upload.status_code == 400
    assert json_upload.json()["invalid_params"][0]["name"] == "rows[1].geo"


async def test_an_experiment_names_markets_in_any_case_and_stores_the_dataset_spelling(client: Client) -> None:
    experiment_id = await create_geolift_experiment(
        client, treatment_markets=["Chicago", "PORTLAND"], exclude_from_controls=["New York"]
    )
    experiment = (await client.get(f"/v1/experiments/{experiment_id}")).json()
    assert experiment["treatment_markets"] == ["chicago", "portland"]
    assert experiment["exclude_from_controls"] == ["new york"]
    results = await client.get(f"/v1/experiments/{experiment_id}/results", params={"method": "tbr"})
    assert results.status_code == 200, results.text


async def test_cells_and_pairs_are_matched_regardless_of_case(client: Client) -> None:
    cells = [
        {"name": "social", "channel": "meta", "treatment_markets": ["Chicago"], "spend": 1000},
        {"name": "search", "treatment_markets": ["Portland"], "spend": 1000},
    ]
    cell_experiment = await create_geolift_experiment(client, treatment_markets=None, spend=None, cells=cells)
    stored = (await client.get(f"/v1/experiments/{cell_experiment}")).json()
    assert [c["treatment_markets"] for c in stored["cells"]] == [["chicago"], ["portland"]]
    paired = await create_geolift_experiment(client, treatment_markets=["Chicago"], pairs=[["CHICAGO", "Boston"]])
    assert (await client.get(f"/v1/experiments/{paired}")).json()["pairs"] == [["chicago", "boston"]]


async def test_two_cells_naming_one_market_in_different_cases_are_refused(client: Client) -> None:
    cells = [
        {"name": "social", "treatment_markets": ["Chicago"], "spend": 1000},
        {"name": "search", "treatment_markets": ["chicago"], "spend": 1000},
    ]
    upload = await client.post("/v1/geo/datasets", content=pretest_csv(), headers=CSV)
    body: dict[str, Any] = {
        "kind": "geo",
        "name": "cells",
        "dataset_id": upload.json()["id"],
        "channel": "media",
        "cells": cells,
        "pre_period": {"start": "2021-01-01", "end": "2021-03-01"},
        "test_period": {"start": "2021-03-02", "end": "2021-03-31"},
    }
    response = await client.post("/v1/experiments", json=body)
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "cells[1].treatment_markets"


async def test_an_unknown_treatment_market_names_the_closest_ones(client: Client) -> None:
    upload = await client.post("/v1/geo/datasets", content=pretest_csv(), headers=CSV)
    body = {
        "kind": "geo",
        "name": "typo",
        "dataset_id": upload.json()["id"],
        "channel": "tv",
        "treatment_markets": ["chicgo"],
        "pre_period": {"start": "2021-01-01", "end": "2021-03-01"},
        "test_period": {"start": "2021-03-02", "end": "2021-03-31"},
    }
    response = await client.post("/v1/experiments", json=body)
    assert response.status_code == 400
    (param,) = response.json()["invalid_params"]
    assert param["name"] == "treatment_markets"
    assert "'chicgo' (closest: 'chicago'" in param["reason"]


async def test_geo_power_and_market_selection_take_markets_in_any_case(client: Client) -> None:
    dataset_id = (await client.post("/v1/geo/datasets", content=pretest_csv(), headers=CSV)).json()["id"]
    body: dict[str, Any] = {"dataset_id": dataset_id, "durations": [10], "effect_sizes": [0, 0.05], "alpha": 0.1}
    lower = await client.post("/v1/geo/power", json={**body, "treatment_markets": ["chicago", "portland"]})
    mixed = await client.post(
        "/v1/geo/power",
        json={**body, "treatment_markets": ["Chicago", "PORTLAND"], "exclude_from_controls": ["New York"]},
    )
    assert mixed.status_code == 200, mixed.text
    assert mixed.json()["treatment_markets"] == ["chicago", "portland"]
    assert mixed.json()["excluded_from_controls"] == ["new york"]
    assert lower.json()["durations"][0]["power_curve"][0]["effect_size"] == 0
    selection = await client.post(
        "/v1/geo/market-selection",
        json={**body, "treatment_sizes": [2], "include": ["CHICAGO"], "exclude": ["Honolulu"]},
    )
    assert selection.status_code == 202, selection.text
    typo = await client.post("/v1/geo/market-selection", json={**body, "treatment_sizes": [2], "include": ["chicagoo"]})
    assert typo.status_code == 400
    assert "closest: 'chicago'" in typo.json()["invalid_params"][0]["reason"]


async def test_a_series_is_read_by_a_market_name_in_any_case(client: Client) -> None:
    dataset_id = (await client.post("/v1/geo/datasets", content=pretest_csv(), headers=CSV)).json()["id"]
    response = await client.get(f"/v1/geo/datasets/{dataset_id}/series", params={"geo": "Chicago"})
    assert response.status_code == 200, response.text
    assert response.json()["geo"] == "chicago"
    assert {row["geo"] for row in response.json()["rows"]} == {"chicago"}


async def test_spend_change_is_keyed_by_the_dataset_spelling(client: Client) -> None:
    experiment_id = await create_geolift_experiment(
        client,
        treatment_markets=["Chicago", "portland"],
        spend=None,
        test_type="heavy-up",
        spend_change={"CHICAGO": 4000, "Portland": 6000},
    )
    stored = (await client.get(f"/v1/experiments/{experiment_id}")).json()
    assert stored["spend_change"] == {"chicago": 4000, "portland": 6000}
