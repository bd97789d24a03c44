"""Geo experiments follow their data: coverage of the test period, re-pointing a draft to another dataset, and
`dataset_version` on every answer that reads a panel (unknown versions refused naming the field)."""

from __future__ import annotations

import csv
from typing import Any

import asyncpg

from testkit.panels import as_geolift_csv, geolift_design, geolift_rows
from tests.api.helpers import Client, create_experiment, upload_dataset
from tests.conftest import DATA_DIR

CSV = {"Content-Type": "text/csv"}
PRE = {"start": "2021-01-01", "end": "2021-03-31"}
TEST = {"start": "2021-04-01", "end": "2021-04-15"}


def _geolift_csv(last_date: str = "2021-04-15", drop: set[tuple[str, str]] | None = None) -> str:
    """GeoLift's walkthrough panel up to ``last_date``, without the (market, date) rows in ``drop``."""
    rows = [r for r in geolift_rows() if r["date"] <= last_date and (r["location"], r["date"]) not in (drop or set())]
    return as_geolift_csv(rows)


async def _geolift_experiment(client: Client, dataset_id: str, **changes: Any) -> str:
    return await create_experiment(client, geolift_design(dataset_id, **changes))


async def _design(database_url: str, experiment_id: str) -> str:
    connection = await asyncpg.connect(database_url)
    try:
        design: str = await connection.fetchval("SELECT design::text FROM experiments WHERE id = $1", experiment_id)
        return design
    finally:
        await connection.close()


async def test_the_experiment_lists_the_market_dates_its_test_still_lacks(client: Client) -> None:
    dataset_id = await upload_dataset(client, _geolift_csv("2021-04-03", drop={("portland", "2021-04-02")}))
    experiment_id = await _geolift_experiment(client, dataset_id)
    coverage = (await client.get(f"/v1/experiments/{experiment_id}")).json()["coverage"]
    assert coverage["covered_through"] == "2021-04-01" and coverage["covered_dates"] == 1
    assert coverage["missing"][0] == {"geo": "portland", "date": "2021-04-02"}
    assert coverage["missing_count"] == 1 + 40 * 12
    assert len(coverage["missing"]) == coverage["listed_limit"] == 100
    assert coverage["dataset_version"] == 1


async def test_a_control_with_pre_period_gaps_is_not_awaited(client: Client) -> None:
    dataset_id = await upload_dataset(client, _geolift_csv(drop={("atlanta", "2021-02-03"), ("atlanta", "2021-04-07")}))
    experiment_id = await _geolift_experiment(client, dataset_id)
    coverage = (await client.get(f"/v1/experiments/{experiment_id}")).json()["coverage"]
    assert coverage["complete"] and coverage["markets_in_use"] == 39 and coverage["covered_through"] == TEST["end"]


async def test_a_draft_can_be_repointed_to_a_dataset_holding_its_markets_and_pre_period(client: Client) -> None:
    history = await upload_dataset(client, _geolift_csv("2021-03-31"))
    experiment_id = await _geolift_experiment(client, history)
    whole = await upload_dataset(client, _geolift_csv())
    response = await client.patch(f"/v1/experiments/{experiment_id}", json={"dataset_id": whole})
    assert response.status_code == 200, response.text
    assert response.json()["dataset_id"] == whole
    results = await client.get(f"/v1/experiments/{experiment_id}/results", params={"method": "tbr"})
    assert results.status_code == 200, results.text
    assert results.json()["dataset_version"] == 1


async def test_repointing_to_a_dataset_without_a_market_is_400_naming_dataset_id_and_changes_nothing(
    client: Client, database_url: str
) -> None:
    history = await upload_dataset(client, _geolift_csv("2021-03-31"))
    experiment_id = await _geolift_experiment(client, history)
    before = await _design(database_url, experiment_id)
    with (DATA_DIR / "geolift" / "GeoLift_Test.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["location"] != "portland"]
    other = await upload_dataset(
        client, "location,Y,date\n" + "".join(f"{r['location']},{r['Y']},{r['date']}\n" for r in rows)
    )
    response = await client.patch(f"/v1/experiments/{experiment_id}", json={"dataset_id": other})
    assert response.status_code == 400
    assert response.json()["invalid_params"] == [
        {"name": "dataset_id", "reason": f"dataset {other} lacks the experiment's markets 'portland'"}
    ]
    assert await _design(database_url, experiment_id) == before


async def test_repointing_to_a_dataset_not_spanning_the_pre_period_is_400_naming_dataset_id(client: Client) -> None:
    history = await upload_dataset(client, _geolift_csv("2021-03-31"))
    experiment_id = await _geolift_experiment(client, history)
    short = await upload_dataset(client, _geolift_csv("2021-02-28"))
    response = await client.patch(f"/v1/experiments/{experiment_id}", json={"dataset_id": short})
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "dataset_id"
    assert "not the whole pre-period 2021-01-01..2021-03-31" in response.json()["detail"]


async def test_repointing_a_running_experiment_is_409(client: Client) -> None:
    dataset_id = await upload_dataset(client, _geolift_csv())
    experiment_id = await _geolift_experiment(client, dataset_id)
    await client.patch(f"/v1/experiments/{experiment_id}", json={"status": "running"})
    response = await client.patch(f"/v1/experiments/{experiment_id}", json={"dataset_id": dataset_id})
    assert response.status_code == 409
    assert response.json()["invalid_params"][0]["name"] == "dataset_id"


async def test_a_result_at_a_version_the_dataset_lacks_is_400_naming_dataset_version(client: Client) -> None:
    dataset_id = await upload_dataset(client, _geolift_csv())
    experiment_id = await _geolift_experiment(client, dataset_id)
    response = await client.get(f"/v1/experiments/{experiment_id}/results", params={"dataset_version": 2})
    assert response.status_code == 400
    assert [p["name"] for p in response.json()["invalid_params"]] == ["dataset_version"]
    export = await client.get(
        f"/v1/experiments/{experiment_id}/calibration", params={"format": "robyn", "dataset_version": 2}
    )
    assert export.status_code == 400
    assert [p["name"] for p in export.json()["invalid_params"]] == ["dataset_version"]


async def test_dataset_version_on_a_holdout_experiment_is_400(client: Client) -> None:
    created = await client.post(
        "/v1/experiments",
        json={
            "kind": "holdout",
            "name": "h",
            "metric": {"kind": "proportion"},
            "channels": [{"name": "meta", "holdout_fraction": 0.1}],
        },
    )
    response = await client.get(f"/v1/experiments/{created.json()['id']}/results", params={"dataset_version": 1})
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "dataset_version"


async def test_geo_power_reads_the_version_asked_and_says_which(client: Client) -> None:
    dataset_id = await upload_dataset(client, _geolift_csv("2021-03-31"))
    appended = await client.post(
        f"/v1/geo/datasets/{dataset_id}/rows",
        content=_geolift_csv().split("\n", 1)[0]
        + "\n"
        + "".join(line + "\n" for line in _geolift_csv().splitlines()[1:] if line.endswith("2021-04-01")),
        headers=CSV,
    )
    assert appended.status_code == 201, appended.text
    body = {
        "dataset_id": dataset_id,
        "treatment_markets": ["chicago", "portland"],
        "durations": [5],
        "effect_sizes": [0, 0.1],
    }
    latest = (await client.post("/v1/geo/power", json=body)).json()
    first = (await client.post("/v1/geo/power", json=body | {"dataset_version": 1})).json()
    assert (latest["dataset_version"], latest["history"]["end"]) == (2, "2021-04-01")
    assert (first["dataset_version"], first["history"]["end"]) == (1, "2021-03-31")
    unknown = await client.post("/v1/geo/power", json=body | {"dataset_version": 3})
    assert unknown.status_code == 400
    assert unknown.json()["invalid_params"][0]["name"] == "dataset_version"


async def test_a_matched_pair_design_at_a_version_the_dataset_lacks_is_400_before_any_job(client: Client) -> None:
    dataset_id = await upload_dataset(client, _geolift_csv("2021-03-31"))
    response = await client.post(
        "/v1/geo/matched-pairs", json={"dataset_id": dataset_id, "budgets": [1000], "dataset_version": 2}
    )
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "dataset_version"
    jobs = await client.post(
        "/v1/geo/market-selection",
        json={
            "dataset_id": dataset_id,
            "treatment_sizes": [2],
            "durations": [10],
            "effect_sizes": [0, 0.1],
            "dataset_version": 5,
        },
    )
    assert jobs.status_code == 400
    assert jobs.json()["invalid_params"][0]["name"] == "dataset_version"
