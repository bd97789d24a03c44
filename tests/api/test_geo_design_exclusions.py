"""`exclude_from_controls` in geo design (issue 13): markets possibly contaminated by the treatment are
left out of every simulation's donor pool. Reference: the same design on the panel uploaded without them."""

from __future__ import annotations

import csv
from typing import Any

from testkit.jobs import finished_job
from tests.api.helpers import Client, upload_dataset
from tests.api.test_market_selection import WALKTHROUGH
from tests.conftest import DATA_DIR

CSV = {"Content-Type": "text/csv"}
NEIGHBOURS = ["milwaukee", "oakland"]
MARKETS = ["chicago", "cincinnati", "houston", "portland"]


def _pretest_csv(without: list[str] | None = None) -> str:
    with (DATA_DIR / "geolift" / "GeoLift_PreTest.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["location"] not in (without or [])]
    return "geo,kpi,date\n" + "".join(f"{r['location']},{r['Y']},{r['date']}\n" for r in rows)


async def _power(client: Client, dataset_id: str, **overrides: Any) -> Any:
    body = {
        "dataset_id": dataset_id,
        "treatment_markets": MARKETS,
        "durations": [10],
        "effect_sizes": [0.0, 0.05, 0.1],
        "alpha": 0.1,
    } | overrides
    return await client.post("/v1/geo/power", json=body)


async def test_power_with_exclusions_is_the_power_on_the_panel_without_them(client: Client) -> None:
    excluded = await _power(client, await upload_dataset(client, _pretest_csv()), exclude_from_controls=NEIGHBOURS)
    assert excluded.status_code == 200, excluded.text
    reference = await _power(client, await upload_dataset(client, _pretest_csv(without=NEIGHBOURS)))
    assert excluded.json()["durations"] == reference.json()["durations"]
    assert excluded.json()["excluded_from_controls"] == NEIGHBOURS


async def test_power_refuses_an_excluded_treated_or_unknown_market_naming_the_field(client: Client) -> None:
    dataset_id = await upload_dataset(client, _pretest_csv())
    for markets in (["chicago"], ["atlantis"]):
        response = await _power(client, dataset_id, exclude_from_controls=markets)
        assert response.status_code == 400, response.text
        assert response.json()["invalid_params"][0]["name"] == "exclude_from_controls"


async def test_selection_refuses_a_market_both_included_and_excluded_from_controls(client: Client) -> None:
    dataset_id = await upload_dataset(client, _pretest_csv())
    body = {"dataset_id": dataset_id, **WALKTHROUGH, "exclude_from_controls": ["chicago"]}
    response = await client.post("/v1/geo/market-selection", json=body)
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "exclude_from_controls"


async def test_a_selection_leaves_excluded_markets_out_and_its_experiment_keeps_them_out(
    client: Client, worker: None
) -> None:
    dataset_id = await upload_dataset(client, _pretest_csv())
    body = {"dataset_id": dataset_id, **WALKTHROUGH, "treatment_sizes": [2, 3], "exclude_from_controls": NEIGHBOURS}
    started = await client.post("/v1/geo/market-selection", json=body)
    assert started.status_code == 202, started.text
    job = await finished_job(client, started.headers["location"])
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert result["excluded_from_controls"] == NEIGHBOURS
    assert result["candidates"] and not any(set(NEIGHBOURS) & set(c["markets"]) for c in result["candidates"])
    made = await client.post(
        f"/v1/geo/market-selection/{job['id']}/experiments", json={"rank": 1, "name": "Top design", "channel": "tv"}
    )
    assert made.status_code == 201, made.text
    assert made.json()["exclude_from_controls"] == NEIGHBOURS
