"""One geo test from design to final result, on one dataset that grows (issue 20's proof).

GeoLift's walkthrough: the history (``GeoLift_PreTest.csv``, 40 cities, 2021-01-01..2021-03-31) is uploaded, a
market selection ranks designs on it, rank 1 becomes the experiment, which runs while the 15 test days of
``GeoLift_Test.csv`` are appended one at a time; the final result must equal the one-shot result on
``GeoLift_Test.csv`` uploaded whole (the reference: the same computation on a panel that never grew).
The same for a matched-pair design on trimmed_match's example data, cut at a date.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from testkit.jobs import succeeded_job
from testkit.panels import GEOLIFT_PRETEST, GEOLIFT_TEST, as_geolift_csv, geolift_rows
from tests.api.helpers import Client, results, upload_dataset
from tests.api.test_matched_pairs import design_csv

CSV = {"Content-Type": "text/csv"}
TEST_START = date(2021, 4, 1)


async def _append_day(client: Client, dataset_id: str, body: str) -> None:
    response = await client.post(f"/v1/geo/datasets/{dataset_id}/rows", content=body, headers=CSV)
    assert response.status_code == 201, response.text


async def _patch(client: Client, experiment_id: str, body: dict[str, Any]) -> None:
    response = await client.patch(f"/v1/experiments/{experiment_id}", json=body)
    assert response.status_code == 200, response.text


def _missing_days(problem: dict[str, Any]) -> list[str]:
    assert all(p["name"] == "test_period" for p in problem["invalid_params"])
    return [p["reason"].removeprefix("no data yet on ") for p in problem["invalid_params"]]


def _same_estimates(grown: dict[str, Any], one_shot: dict[str, Any]) -> None:
    for key in ("att", "incremental"):
        for bound in ("estimate", "ci_low", "ci_high"):
            assert grown[key][bound] == pytest.approx(one_shot[key][bound], rel=1e-9, abs=1e-9), (key, bound)
    assert grown["p_value"] == pytest.approx(one_shot["p_value"], rel=1e-9)
    assert grown["weights"] == pytest.approx(one_shot["weights"], rel=1e-9, abs=1e-12)


async def _geolift_experiment_from_market_selection(client: Client, dataset_id: str) -> dict[str, Any]:
    """A market selection on the GeoLift history, its rank 1 made an experiment (15 test days from TEST_START)."""
    selection = await client.post(
        "/v1/geo/market-selection",
        json={
            "dataset_id": dataset_id,
            "treatment_sizes": [2],
            "durations": [15],
            "effect_sizes": [0, 0.05, 0.1, 0.15, 0.2],
            "include": ["chicago"],
            "exclude": ["honolulu"],
            "search_budget": 0,
            "top": 3,
        },
    )
    assert selection.status_code == 202, selection.text
    job = await succeeded_job(client, selection.headers["location"], seconds=120)
    assert job["result"]["dataset_version"] == 1
    created = await client.post(
        f"/v1/geo/market-selection/{job['id']}/experiments",
        json={"rank": 1, "name": "TV in the best markets", "channel": "tv", "spend": 10000},
    )
    assert created.status_code == 201, created.text
    experiment: dict[str, Any] = created.json()
    assert experiment["test_period"] == {"start": "2021-04-01", "end": "2021-04-15"}
    return experiment


async def _assert_coverage_after_five_days(client: Client, experiment_id: str) -> None:
    """Five of the 15 test days stored: coverage through 2021-04-05, the other 10 days missing in all 40 markets."""
    coverage = (await client.get(f"/v1/experiments/{experiment_id}")).json()["coverage"]
    assert coverage["covered_through"] == "2021-04-05" and coverage["covered_dates"] == 5
    assert coverage["test_dates"] == 15 and not coverage["complete"]
    assert coverage["markets_in_use"] == 40  # the 2 treated and every control (honolulu is one)
    assert coverage["missing_count"] == 40 * 10 and coverage["missing_dates"][0] == "2021-04-06"


async def _append_geolift_test_days(client: Client, dataset_id: str, experiment_id: str) -> None:
    """Append GeoLift_Test's 15 test days one at a time, reading an interim result after each but the last."""
    test_rows = [r for r in geolift_rows(GEOLIFT_TEST) if r["date"] >= TEST_START.isoformat()]
    for k in range(15):
        day = (TEST_START + timedelta(days=k)).isoformat()
        await _append_day(client, dataset_id, as_geolift_csv([r for r in test_rows if r["date"] == day]))
        if k < 14:  # an interim result over the days so far, read as a test with a look every day
            interim = await results(client, experiment_id)
            assert interim["interim"] is True and interim["final"] is False
            assert interim["series"][-1]["date"] == day
            monitoring = interim["monitoring"]
            assert monitoring["days_observed"] == k + 1 and monitoring["planned_days"] == 15
            assert monitoring["decision"] in ("continue", "stop: effect detected")
        if k == 4:
            await _assert_coverage_after_five_days(client, experiment_id)


async def _one_shot_geolift_results(client: Client, experiment: dict[str, Any]) -> dict[str, Any]:
    """The same experiment's results on GeoLift_Test.csv uploaded whole: the reference."""
    one_shot_dataset = await upload_dataset(client, as_geolift_csv(geolift_rows(GEOLIFT_TEST)))
    one_shot = await client.post(
        "/v1/experiments",
        json={
            "kind": "geo",
            "name": "The same test on the whole file",
            "dataset_id": one_shot_dataset,
            "channel": "tv",
            "treatment_markets": experiment["treatment_markets"],
            "pre_period": experiment["pre_period"],
            "test_period": experiment["test_period"],
            "spend": 10000,
        },
    )
    assert one_shot.status_code == 201, one_shot.text
    return await results(client, one_shot.json()["id"])


async def test_a_geolift_test_runs_from_market_selection_to_final_result_on_one_growing_dataset(
    client: Client, worker: None
) -> None:
    dataset_id = await upload_dataset(client, as_geolift_csv(geolift_rows(GEOLIFT_PRETEST)))
    experiment = await _geolift_experiment_from_market_selection(client, dataset_id)
    experiment_id = experiment["id"]
    markets = experiment["treatment_markets"]
    assert "chicago" in markets and len(markets) == 2
    await _patch(client, experiment_id, {"status": "running"})

    before = await client.get(f"/v1/experiments/{experiment_id}/results")
    assert before.status_code == 409
    assert _missing_days(before.json()) == [(TEST_START + timedelta(days=j)).isoformat() for j in range(15)]

    await _append_geolift_test_days(client, dataset_id, experiment_id)
    assert (await client.get(f"/v1/experiments/{experiment_id}")).json()["coverage"]["complete"]
    fifth_day = await results(client, experiment_id, dataset_version=6)
    assert fifth_day["interim"] is True and fifth_day["monitoring"]["days_observed"] == 5
    running = await results(client, experiment_id)
    assert running["interim"] is False and running["monitoring"] is None
    await _patch(client, experiment_id, {"status": "stopped"})
    final = await results(client, experiment_id)
    assert final["dataset_version"] == 16
    assert final["att"] == running["att"]
    _same_estimates(final, await _one_shot_geolift_results(client, experiment))

    as_designed = await client.get(f"/v1/experiments/{experiment_id}/results", params={"dataset_version": 1})
    assert as_designed.status_code == 409
    assert as_designed.json() == before.json()
    calibration = await client.get(
        f"/v1/experiments/{experiment_id}/calibration", params={"format": "robyn", "dataset_version": 16}
    )
    assert calibration.status_code == 200, calibration.text
    assert calibration.json()["context"]["dataset_version"] == 16


async def test_a_matched_pair_test_runs_from_design_to_final_result_on_one_growing_dataset(
    client: Client, worker: None
) -> None:
    cut, end = "2020-12-01", "2020-12-14"
    whole = design_csv(geos=24, since="2020-10-01").splitlines()
    header, rows = whole[0], [line for line in whole[1:] if line[:10] <= end]
    dataset_id = await upload_dataset(client, "\n".join([header, *(r for r in rows if r[:10] < cut)]) + "\n")
    design = await client.post(
        "/v1/geo/matched-pairs",
        json={
            "dataset_id": dataset_id,
            "budgets": [40000],
            "pair_counts": [12],
            "simulations": 20,
            "seed": 9,
            "evaluation_period": {"start": "2020-11-17", "end": "2020-11-30"},
        },
    )
    assert design.status_code == 202, design.text
    job = await succeeded_job(client, design.headers["location"], seconds=120)
    assert job["result"]["dataset_version"] == 1
    created = await client.post(
        f"/v1/geo/matched-pairs/{job['id']}/experiments",
        json={"pairs_kept": 12, "name": "Search holdback", "channel": "search"},
    )
    assert created.status_code == 201, created.text
    experiment = created.json()
    assert experiment["test_period"] == {"start": cut, "end": end}
    await _patch(client, experiment["id"], {"status": "running"})

    days = sorted({r[:10] for r in rows if r[:10] >= cut})
    assert len(days) == 14
    for k, day in enumerate(days):
        await _append_day(client, dataset_id, "\n".join([header, *(r for r in rows if r[:10] == day)]) + "\n")
        response = await client.get(f"/v1/experiments/{experiment['id']}/results", params={"method": "trimmed_match"})
        if k < len(days) - 1:
            assert response.status_code == 409, response.text
            assert _missing_days(response.json())[0] == days[k + 1]
        else:
            assert response.status_code == 200, response.text
    await _patch(client, experiment["id"], {"status": "stopped"})
    final = await results(client, experiment["id"], method="trimmed_match")
    assert final["dataset_version"] == 15
    assert (final["fit"]["max_trim_rate"], final["fit"]["max_trim_rate_source"]) == (0.1, "matched_pair_design")

    one_shot_dataset = await upload_dataset(client, "\n".join([header, *rows]) + "\n")
    one_shot = await client.post(
        "/v1/experiments",
        json={
            "kind": "geo",
            "name": "The same pairs on the whole file",
            "dataset_id": one_shot_dataset,
            "channel": "search",
            "treatment_markets": experiment["treatment_markets"],
            "pairs": experiment["pairs"],
            "pre_period": experiment["pre_period"],
            "test_period": experiment["test_period"],
            # Not made from the design, it would choose its trim up to 25%: fixed at the rate the design's bound chose.
            "trim_rate": final["fit"]["trim_rate"],
        },
    )
    assert one_shot.status_code == 201, one_shot.text
    expected = await results(client, one_shot.json()["id"], method="trimmed_match")
    for key in ("att", "incremental", "iroas"):
        for bound in ("estimate", "ci_low", "ci_high"):
            assert final[key][bound] == pytest.approx(expected[key][bound], rel=1e-9, abs=1e-9), (key, bound)
    as_designed = await client.get(
        f"/v1/experiments/{experiment['id']}/results", params={"method": "trimmed_match", "dataset_version": 1}
    )
    assert as_designed.status_code == 409
    assert _missing_days(as_designed.json())[0] == cut
