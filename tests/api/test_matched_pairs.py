"""`POST /v1/geo/matched-pairs` end to end: a job run by a worker, its designs, and experiments made of them.

Panels are cut from trimmed_match's ``example_data_for_design.csv`` (``tests/data/trimmed_match``);
the full 174-geo panel's pairing is checked against the package's own (``design_reference.json``).
"""

from __future__ import annotations

import csv
import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stats.geo.pair_design import DESIGN_MAX_TRIM_RATE
from stats.geo.trimmed_match import DEFAULT_MAX_TRIM_RATE, trimmed_match
from testkit.jobs import finished_job
from tests.api.helpers import Client, upload_dataset

CSV = {"Content-Type": "text/csv"}
DATA = Path(__file__).resolve().parents[1] / "data" / "trimmed_match"


@cache
def _design_rows() -> tuple[tuple[str, str, str, str], ...]:
    with (DATA / "example_data_for_design.csv").open() as handle:
        return tuple((r["date"][:10], r["geo"], r["response"], r["cost"]) for r in csv.DictReader(handle))


@cache
def geo_ids() -> tuple[str, ...]:
    """The example's geo ids in numeric order (2, 3, 4, 5, 8, 10, ...)."""
    return tuple(sorted({r[1] for r in _design_rows()}, key=int))


def design_csv(geos: int = 174, since: str = "2020-01-01", spend: bool = True) -> str:
    """The design example as `date,geo,kpi[,spend]`: its first ``geos`` geos, dates from ``since``."""
    chosen = set(geo_ids()[:geos])
    kept = [r for r in _design_rows() if r[1] in chosen and r[0] >= since]
    if not spend:
        return "date,geo,kpi\n" + "".join(f"{d},{g},{y}\n" for d, g, y, _ in kept)
    return "date,geo,kpi,spend\n" + "".join(f"{d},{g},{y},{c}\n" for d, g, y, c in kept)


@pytest.fixture
async def dataset_id(client: Client) -> str:
    """24 geos (12 pairs) over 2020-10-01..2020-12-29: the last 28 days are the evaluation window."""
    return await upload_dataset(client, design_csv(geos=24, since="2020-10-01"))


async def design(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/v1/geo/matched-pairs", json=body)
    assert response.status_code == 202, response.text
    job = await finished_job(client, response.headers["location"])
    assert job["status"] == "succeeded", job
    return {"job_id": job["id"], **job["result"]}


def problem_field(response: Any) -> str:
    assert response.headers["content-type"].startswith("application/problem+json")
    return str(response.json()["invalid_params"][0]["name"])


async def test_a_design_is_a_job(client: Client, dataset_id: str) -> None:
    response = await client.post("/v1/geo/matched-pairs", json={"dataset_id": dataset_id, "budgets": [50000]})
    assert response.status_code == 202
    assert response.headers["location"] == f"/v1/jobs/{response.json()['id']}"


async def test_the_result_lists_each_number_of_pairs_with_its_rmse_and_minimum_detectable_iroas(
    client: Client, worker: None, dataset_id: str
) -> None:
    result = await design(
        client,
        {"dataset_id": dataset_id, "budgets": [20000, 40000], "pair_counts": [12, 8], "simulations": 50, "seed": 3},
    )
    assert result["evaluation_period"] == {"start": "2020-12-02", "end": "2020-12-29"}
    assert (result["training_days"], result["evaluation_days"]) == (62, 28)
    assert [d["pairs_kept"] for d in result["designs"]] == [12, 8]
    twelve, eight = result["designs"]
    assert [p["pair"] for p in eight["pairs"]] == [5, 6, 7, 8, 9, 10, 11, 12]  # the 4 least similar dropped
    assert [{p["treatment"], p["control"]} for p in eight["pairs"]] == [
        {p["treatment"], p["control"]} for p in twelve["pairs"] if p["pair"] > 4
    ]
    assert eight["pairs_dropped"] == 4
    for budget in twelve["budgets"]:
        z = 1.2815515655446004 + 0.8416212335729143  # z(0.9) + z(0.8)
        assert budget["minimum_detectable_iroas"] == pytest.approx(budget["rmse"] * z, rel=1e-12)
    # holdback: the RMSE is inversely proportional to the budget (same simulated assignments)
    assert twelve["budgets"][1]["rmse"] == pytest.approx(twelve["budgets"][0]["rmse"] / 2, rel=1e-9)
    assert result["recommended"] in (12, 8)
    geos = [g for p in twelve["pairs"] for g in (p["treatment"], p["control"])]
    assert sorted(geos, key=int) == list(geo_ids()[:24])
    assert twelve["treatment_markets"] == [p["treatment"] for p in twelve["pairs"]]


async def test_the_sums_from_postgres_pair_the_full_panel_as_the_package_does(client: Client, worker: None) -> None:
    dataset = await upload_dataset(client, design_csv())
    result = await design(
        client,
        {
            "dataset_id": dataset,
            "budgets": [300000],
            "pair_counts": [87],
            "simulations": 10,
            "evaluation_period": {"start": "2020-12-02", "end": "2020-12-29"},
        },
    )
    expected = json.loads((DATA / "design_reference.json").read_text())["pairs"]
    pairs = result["designs"][0]["pairs"]
    assert [p["pair"] for p in pairs] == expected["pair"]
    assert [{p["treatment"], p["control"]} for p in pairs] == [
        {str(a), str(b)} for a, b in zip(expected["geo1"], expected["geo2"], strict=True)
    ]
    assert [p["distance"] for p in pairs] == pytest.approx(expected["distance"], rel=1e-9)


async def test_the_same_seed_gives_the_same_randomization_and_the_seed_is_stored(
    client: Client, worker: None, dataset_id: str
) -> None:
    body = {"dataset_id": dataset_id, "budgets": [30000], "pair_counts": [12], "simulations": 20}
    first = await design(client, {**body, "seed": 41})
    # A new upload of the same panel, else the first job answers again.
    same_panel = await upload_dataset(client, design_csv(geos=24, since="2020-10-01"))
    again = await design(client, {**body, "dataset_id": same_panel, "seed": 41})
    generated = await design(client, body)
    assert first["designs"][0]["pairs"] == again["designs"][0]["pairs"]
    assert first["designs"][0]["budgets"] == again["designs"][0]["budgets"]
    assert first["designs"][0]["assignment"]["seed"] == 41
    assert isinstance(generated["seed"], int)
    assert generated["designs"][0]["assignment"]["seed"] == generated["seed"]


async def test_a_target_iroas_alone_evaluates_each_design_at_the_budget_it_needs(
    client: Client, worker: None, dataset_id: str
) -> None:
    result = await design(
        client, {"dataset_id": dataset_id, "target_iroas": 2.5, "pair_counts": [12], "simulations": 30, "seed": 5}
    )
    (budget,) = result["designs"][0]["budgets"]
    assert budget["minimum_detectable_iroas"] == pytest.approx(2.5, rel=1e-9)  # exact for holdback
    assert budget["budget_for_target_iroas"] == pytest.approx(budget["budget"], rel=1e-9)


async def test_given_pairs_are_evaluated_as_given_and_numbered_by_distance(
    client: Client, worker: None, dataset_id: str
) -> None:
    ids = geo_ids()[:24]
    given = [[ids[i], ids[23 - i]] for i in range(12)]  # deliberately poor: smallest with largest
    result = await design(client, {"dataset_id": dataset_id, "budgets": [20000], "pairs": given, "simulations": 20})
    (only,) = result["designs"]
    assert only["pairs_kept"] == 12
    assert {frozenset((p["treatment"], p["control"])) for p in only["pairs"]} == {frozenset(p) for p in given}
    distances = [p["distance"] for p in only["pairs"]]
    assert distances == sorted(distances, reverse=True)


@pytest.mark.parametrize("test_type", ["go-dark", "heavy-up"])
async def test_every_test_type_is_designed(client: Client, worker: None, dataset_id: str, test_type: str) -> None:
    result = await design(
        client,
        {"dataset_id": dataset_id, "budgets": [20000], "pair_counts": [12], "simulations": 20, "test_type": test_type},
    )
    assert result["test_type"] == test_type
    assert result["designs"][0]["budgets"][0]["rmse"] > 0


async def test_a_panel_without_spend_uses_response_as_the_spend_proxy(client: Client, worker: None) -> None:
    dataset = await upload_dataset(client, design_csv(geos=24, since="2020-10-01", spend=False))
    result = await design(client, {"dataset_id": dataset, "budgets": [1000], "pair_counts": [12], "simulations": 10})
    assert result["spend_proxy"] == "response"
    assert any("proportional to its response" in w for w in result["warnings"])


async def test_an_odd_number_of_geos_leaves_out_the_largest(client: Client, worker: None) -> None:
    dataset = await upload_dataset(client, design_csv(geos=25, since="2020-10-01"))
    result = await design(client, {"dataset_id": dataset, "budgets": [1000], "pair_counts": [12], "simulations": 10})
    assert result["left_out"] is not None
    assert result["left_out"] not in [g for p in result["designs"][0]["pairs"] for g in (p["treatment"], p["control"])]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"exclude": ["999"]}, "exclude"),
        ({"pairs": [["2", "3"], ["4", "4"], ["5", "8"]]}, "pairs[1]"),
        ({"pairs": [["2", "3"], ["4", "5"], ["8", "3"]]}, "pairs[2]"),
        ({"pairs": [["2", "3"], ["4", "999"], ["5", "8"]]}, "pairs[1][1]"),
        ({"pairs": [["2", "3"], ["4", "5"], ["8", "10"]], "exclude": ["10"]}, "pairs[2][1]"),
        ({"pre_period": {"start": "2020-11-20", "end": "2020-12-29"}}, "pre_period"),
        ({"evaluation_period": {"start": "2020-09-01", "end": "2020-12-29"}}, "evaluation_period"),
        ({"budgets": []}, "budgets"),
        ({"pair_counts": [13]}, "pair_counts"),
        ({"exclude": list(geo_ids()[:19])}, "exclude"),
    ],
)
async def test_bad_input_is_a_400_naming_the_field(
    client: Client, dataset_id: str, change: dict[str, Any], field: str
) -> None:
    response = await client.post("/v1/geo/matched-pairs", json={"dataset_id": dataset_id, "budgets": [1000], **change})
    assert response.status_code == 400, response.text
    assert problem_field(response) == field


async def test_geos_with_missing_dates_are_a_409_naming_them(client: Client) -> None:
    rows = design_csv(geos=24, since="2020-10-01").splitlines()
    holed = "\n".join(r for r in rows if not r.startswith("2020-10-05,8,")) + "\n"
    dataset = await upload_dataset(client, holed)
    response = await client.post("/v1/geo/matched-pairs", json={"dataset_id": dataset, "budgets": [1000]})
    assert response.status_code == 409, response.text
    assert "8 (1 missing)" in response.json()["detail"]
    excluded = await client.post(
        "/v1/geo/matched-pairs", json={"dataset_id": dataset, "budgets": [1000], "exclude": ["8"]}
    )
    assert excluded.status_code == 202, excluded.text


async def test_an_unknown_dataset_is_a_404(client: Client) -> None:
    response = await client.post(
        "/v1/geo/matched-pairs", json={"dataset_id": "00000000-0000-4000-8000-000000000000", "budgets": [1]}
    )
    assert response.status_code == 404


@pytest.fixture
async def finished_design(client: Client, worker: None, dataset_id: str) -> dict[str, Any]:
    return await design(
        client, {"dataset_id": dataset_id, "budgets": [40000], "pair_counts": [12, 10], "simulations": 20, "seed": 9}
    )


async def test_a_design_becomes_a_paired_experiment_with_its_assignment(
    client: Client, finished_design: dict[str, Any]
) -> None:
    job_id = finished_design["job_id"]
    ten = finished_design["designs"][1]
    response = await client.post(
        f"/v1/geo/matched-pairs/{job_id}/experiments",
        json={"pairs_kept": 10, "name": "Search test", "channel": "search"},
    )
    assert response.status_code == 201, response.text
    experiment = response.json()
    assert experiment["pairs"] == [[p["treatment"], p["control"]] for p in ten["pairs"]]
    assert experiment["treatment_markets"] == ten["treatment_markets"]
    assert experiment["pre_period"] == {"start": "2020-10-01", "end": "2020-12-29"}
    assert experiment["test_period"] == {"start": "2020-12-30", "end": "2021-01-26"}
    assert experiment["design_source"] == {"job_id": job_id, "kind": "matched_pairs", "pairs_kept": 10, "seed": 9}
    stored = await client.get(response.headers["location"])
    assert stored.json()["pairs"] == experiment["pairs"]


async def test_a_retry_with_the_same_idempotency_key_returns_the_first_experiment(
    client: Client, finished_design: dict[str, Any]
) -> None:
    path = f"/v1/geo/matched-pairs/{finished_design['job_id']}/experiments"
    body = {"pairs_kept": 12, "name": "Search test", "channel": "search"}
    headers = {"Idempotency-Key": "pairs-1"}
    first = await client.post(path, json=body, headers=headers)
    again = await client.post(path, json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    other = await client.post(path, json={**body, "pairs_kept": 10}, headers=headers)
    assert other.status_code == 422  # the same key with another body (issue 12)


async def test_a_design_colliding_with_a_running_experiment_is_a_409(
    client: Client, finished_design: dict[str, Any]
) -> None:
    path = f"/v1/geo/matched-pairs/{finished_design['job_id']}/experiments"
    first = await client.post(path, json={"pairs_kept": 12, "name": "First", "channel": "search"})
    started = await client.patch(f"/v1/experiments/{first.json()['id']}", json={"status": "running"})
    assert started.status_code == 200, started.text
    second = await client.post(path, json={"pairs_kept": 10, "name": "Second", "channel": "tv"})
    assert second.status_code == 409
    assert problem_field(second) == "treatment_markets"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"pairs_kept": 11}, "pairs_kept"),
        ({"pairs_kept": 12, "test_period": {"start": "2021-01-01", "end": "2021-01-10"}}, "test_period"),
    ],
)
async def test_an_experiment_outside_the_design_is_a_400_naming_the_field(
    client: Client, finished_design: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    response = await client.post(
        f"/v1/geo/matched-pairs/{finished_design['job_id']}/experiments",
        json={"name": "Test", "channel": "search", **body},
    )
    assert response.status_code == 400, response.text
    assert problem_field(response) == field


async def test_an_unknown_design_is_a_404(client: Client) -> None:
    response = await client.post(
        "/v1/geo/matched-pairs/00000000-0000-4000-8000-000000000000/experiments",
        json={"pairs_kept": 10, "name": "Test", "channel": "search"},
    )
    assert response.status_code == 404


def _window_deltas(pairs: list[list[str]], start: str, end: str) -> tuple[np.ndarray, np.ndarray]:
    """Each ``[treatment, control]`` pair's KPI and spend delta summed over ``start..end``, from the CSV itself."""
    kpi: dict[str, float] = {}
    spend: dict[str, float] = {}
    for day, geo, response, cost in _design_rows():
        if start <= day <= end:
            kpi[geo] = kpi.get(geo, 0.0) + float(response)
            spend[geo] = spend.get(geo, 0.0) + float(cost)
    return (
        np.array([kpi[t] - kpi[c] for t, c in pairs]),
        np.array([spend[t] - spend[c] for t, c in pairs]),
    )


async def design_made_experiment(client: Client, dataset_id: str) -> dict[str, Any]:
    """A 12-pair matched-pair design on the panel (its simulations at the design's 10% trim bound) made a
    paired experiment of December 2020."""
    made = await design(
        client,
        {
            "dataset_id": dataset_id,
            "budgets": [40000],
            "pair_counts": [12],
            "simulations": 20,
            "seed": 9,
            "pre_period": {"start": "2020-10-01", "end": "2020-12-01"},
        },
    )
    assert all(b["trim_rate"] <= DESIGN_MAX_TRIM_RATE for b in made["designs"][0]["budgets"])
    created = await client.post(
        f"/v1/geo/matched-pairs/{made['job_id']}/experiments",
        json={"pairs_kept": 12, "name": "Search holdback", "channel": "search"},
    )
    assert created.status_code == 201, created.text
    experiment: dict[str, Any] = created.json()
    assert experiment["test_period"] == {"start": "2020-12-02", "end": "2020-12-29"}
    return experiment


async def trimmed_match_result(client: Client, experiment_id: str) -> dict[str, Any]:
    answer = await client.get(
        f"/v1/experiments/{experiment_id}/results", params={"method": "trimmed_match"}, headers={"Prefer": "wait=60"}
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def test_an_experiment_made_of_a_design_is_measured_with_the_trim_bound_the_design_simulated(
    client: Client, worker: None, dataset_id: str
) -> None:
    # The design simulates its RMSE and minimum detectable iROAS with the trim chosen up to 10%; the result must be
    # that estimator (not the estimator's own default of 25%), or the design promised another test's precision.
    experiment = await design_made_experiment(client, dataset_id)
    result = await trimmed_match_result(client, experiment["id"])
    assert not [w for w in result["warnings"] if "trim_rate" in w]
    fit = result["fit"]
    assert (fit["max_trim_rate"], fit["max_trim_rate_source"], fit["trim_rate_source"]) == (
        DESIGN_MAX_TRIM_RATE,
        "matched_pair_design",
        "data",
    )
    assert max(c["trim_rate"] for c in fit["trim_candidates"]) <= DESIGN_MAX_TRIM_RATE
    y, x = _window_deltas(experiment["pairs"], "2020-12-02", "2020-12-29")
    expected = trimmed_match(y, x, 0.9, max_trim_rate=DESIGN_MAX_TRIM_RATE)
    iroas = result["iroas"]
    assert (iroas["estimate"], iroas["ci_low"], iroas["ci_high"]) == pytest.approx(
        (expected.estimate, expected.ci_low, expected.ci_high), rel=1e-9
    )
    assert fit["trim_rate"] == pytest.approx(expected.trim_rate)


async def test_a_design_made_experiment_fixing_a_trim_rate_beyond_its_designs_bound_is_warned(
    client: Client, worker: None, dataset_id: str
) -> None:
    experiment = await design_made_experiment(client, dataset_id)
    patched = await client.patch(f"/v1/experiments/{experiment['id']}", json={"trim_rate": 0.2})
    assert patched.status_code == 200, patched.text
    result = await trimmed_match_result(client, experiment["id"])
    assert result["fit"]["trim_rate"] == 0.2
    assert [w for w in result["warnings"] if w.startswith("trim_rate 0.2 exceeds the 0.1")], result["warnings"]


async def test_a_paired_experiment_made_by_hand_chooses_its_trim_up_to_the_estimators_default(
    client: Client, dataset_id: str
) -> None:
    pairs = [[geo_ids()[i], geo_ids()[i + 1]] for i in range(0, 24, 2)]
    created = await client.post(
        "/v1/experiments",
        json={
            "kind": "geo",
            "name": "Pairs by hand",
            "dataset_id": dataset_id,
            "channel": "search",
            "treatment_markets": [t for t, _ in pairs],
            "pairs": pairs,
            "pre_period": {"start": "2020-10-01", "end": "2020-12-01"},
            "test_period": {"start": "2020-12-02", "end": "2020-12-29"},
        },
    )
    assert created.status_code == 201, created.text
    answer = await client.get(
        f"/v1/experiments/{created.json()['id']}/results",
        params={"method": "trimmed_match"},
        headers={"Prefer": "wait=60"},
    )
    assert answer.status_code == 200, answer.text
    fit = answer.json()["fit"]
    assert (fit["max_trim_rate"], fit["max_trim_rate_source"]) == (DEFAULT_MAX_TRIM_RATE, "estimator_default")
    assert max(c["trim_rate"] for c in fit["trim_candidates"]) == DEFAULT_MAX_TRIM_RATE  # 3 of 12 pairs a side
