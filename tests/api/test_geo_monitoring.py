"""``sequential=true`` on geo results: GeoLift's walkthrough test read as a test with a look every day."""

from __future__ import annotations

import csv
from datetime import date, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.charts.images import render_chart
from api.charts.monitoring import monitoring_chart
from api.geo.schemas import GeoLook
from stats.geo.monitoring import daily_boundaries
from testkit.jobs import finished_job
from testkit.panels import pretest_csv
from tests.api.helpers import create_geolift_experiment
from tests.chart_marks import chart_marks
from tests.conftest import DATA_DIR

Client = AsyncTestClient[Litestar]


async def running_geolift_experiment(client: Client, **overrides: Any) -> str:
    experiment_id = await create_geolift_experiment(client, **overrides)
    started = await client.patch(f"/v1/experiments/{experiment_id}", json={"status": "running"})
    assert started.status_code == 200, started.text
    return experiment_id


async def monitored(client: Client, experiment_id: str, method: str) -> dict[str, Any]:
    answer = await client.get(
        f"/v1/experiments/{experiment_id}/results", params={"method": method, "sequential": "true"}
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


@pytest.mark.parametrize("method", ["synthetic_control", "tbr"])
async def test_every_test_day_is_a_look_held_to_its_boundary(client: Client, method: str) -> None:
    experiment_id = await running_geolift_experiment(client)
    monitoring = (await monitored(client, experiment_id, method))["monitoring"]
    assert monitoring["planned_days"] == 15 and monitoring["days_observed"] == 15
    looks = monitoring["looks"]
    assert [look["day"] for look in looks] == list(range(1, 16))
    assert looks[0]["date"] == "2021-04-01" and looks[-1]["date"] == "2021-04-15"
    levels = [look["nominal_level"] for look in looks]
    assert levels == sorted(levels) and levels[-1] < 0.1  # spending at 1 - confidence_level = 0.1
    for look in looks:
        assert look["crossed"] == (look["p_value_fixed_horizon"] <= look["nominal_level"])
    crossed = [look["day"] for look in looks if look["crossed"]]
    assert monitoring["decision_day"] == (crossed[0] if crossed else None)
    assert monitoring["decision"] == ("stop: effect detected" if crossed else "stop: planned end")
    assert (monitoring["p_value"] <= 0.1) == bool(crossed)


async def test_the_monitoring_chart_draws_each_looks_p_value_against_its_boundary(client: Client) -> None:
    experiment_id = await running_geolift_experiment(client)
    monitoring = (await monitored(client, experiment_id, "synthetic_control"))["monitoring"]
    marks = chart_marks(render_chart(monitoring["chart"], "svg"))
    per_series = marks.per_series()
    assert list(per_series) == ["fixed-horizon p-value", "boundary (nominal level)"]
    # One line per series; a point on the p-value line for each of the 15 looks.
    assert per_series["fixed-horizon p-value"] == {"line": 1, "symbol": 15}
    assert per_series["boundary (nominal level)"] == {"line": 1}
    assert marks.axis_titles == ("Look date", "p-value and boundary (log scale; values below 1e-6 drawn at 1e-6)")
    assert marks.titles[0] == "Daily looks against the boundary"
    day = monitoring["decision_day"]
    assert marks.texts() == ([f"crossed on day {day}"] if day is not None else [])


@pytest.mark.parametrize("method", ["synthetic_control", "tbr"])
async def test_the_repeated_interval_contains_the_fixed_horizon_interval(client: Client, method: str) -> None:
    experiment_id = await running_geolift_experiment(client)
    body = await monitored(client, experiment_id, method)
    repeated, fixed = body["monitoring"]["att"], body["att"]
    assert repeated["estimate"] == pytest.approx(fixed["estimate"])
    assert fixed["ci_low"] is not None and fixed["ci_high"] is not None
    assert repeated["ci_low"] is None or repeated["ci_low"] <= fixed["ci_low"] + 1e-6 * abs(fixed["ci_low"])
    assert repeated["ci_high"] is None or repeated["ci_high"] >= fixed["ci_high"] - 1e-6 * abs(fixed["ci_high"])
    # The repeated p-value is never below the last look's fixed-horizon p-value's smallest over the looks.
    smallest = min(look["p_value_fixed_horizon"] for look in body["monitoring"]["looks"])
    assert body["monitoring"]["p_value"] >= smallest


async def test_a_result_without_sequential_has_no_monitoring(client: Client) -> None:
    experiment_id = await running_geolift_experiment(client)
    answer = await client.get(f"/v1/experiments/{experiment_id}/results")
    assert answer.status_code == 200, answer.text
    assert answer.json()["monitoring"] is None and answer.json()["interim"] is False


async def test_sequential_on_a_draft_is_400_naming_it(client: Client) -> None:
    experiment_id = await create_geolift_experiment(client)
    answer = await client.get(f"/v1/experiments/{experiment_id}/results", params={"sequential": "true"})
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert [p["name"] for p in answer.json()["invalid_params"]] == ["sequential"]


async def test_sequential_with_trimmed_match_is_400_naming_it(client: Client) -> None:
    experiment_id = await running_geolift_experiment(
        client, treatment_markets=["chicago", "portland"], pairs=[["chicago", "boston"], ["portland", "atlanta"]]
    )
    answer = await client.get(
        f"/v1/experiments/{experiment_id}/results", params={"sequential": "true", "method": "trimmed_match"}
    )
    assert answer.status_code == 400, answer.text
    assert [p["name"] for p in answer.json()["invalid_params"]] == ["sequential"]


async def test_a_daily_monitored_design_reports_its_power_early_stops_and_days_to_decision(client: Client) -> None:
    upload = await client.post("/v1/geo/datasets", content=pretest_csv(), headers={"Content-Type": "text/csv"})
    assert upload.status_code == 201, upload.text
    answer = await client.post(
        "/v1/geo/power",
        json={
            "dataset_id": upload.json()["id"],
            "treatment_markets": ["chicago", "portland"],
            "durations": [15],
            "effect_sizes": [0.0, 0.05, 0.1],
            "alpha": 0.1,
            "monitoring": "daily",
        },
    )
    assert answer.status_code == 200, answer.text
    design = answer.json()["durations"][0]
    assert [p["effect_size"] for p in design["monitored"]] == [0.0, 0.05, 0.1]
    for fixed, daily in zip(design["power_curve"], design["monitored"], strict=True):
        assert daily["fixed_horizon_power"] == fixed["power"]
        assert daily["power"] <= fixed["power"] + 1e-9
        assert daily["power_cost"] == pytest.approx(fixed["power"] - daily["power"], abs=1e-9)
        assert 1.0 <= daily["expected_days_to_decision"] <= 15.0
        assert 0.0 <= daily["stopped_early"] <= daily["power"] + 1e-9


async def test_daily_monitoring_of_a_one_sided_design_is_400_naming_it(client: Client) -> None:
    upload = await client.post("/v1/geo/datasets", content=pretest_csv(), headers={"Content-Type": "text/csv"})
    answer = await client.post(
        "/v1/geo/power",
        json={
            "dataset_id": upload.json()["id"],
            "treatment_markets": ["chicago"],
            "durations": [15],
            "effect_sizes": [0.05],
            "side": "larger",
            "monitoring": "daily",
        },
    )
    assert answer.status_code == 400, answer.text
    assert [p["name"] for p in answer.json()["invalid_params"]] == ["monitoring"]


async def test_a_daily_monitored_selection_reports_each_candidates_monitored_power(
    client: Client, worker: None
) -> None:
    upload = await client.post("/v1/geo/datasets", content=pretest_csv(), headers={"Content-Type": "text/csv"})
    submitted = await client.post(
        "/v1/geo/market-selection",
        json={
            "dataset_id": upload.json()["id"],
            "treatment_sizes": [2],
            "durations": [15],
            "effect_sizes": [0, 0.05, 0.1, 0.15],
            "include": ["chicago"],
            "alpha": 0.1,
            "top": 3,
            "search_budget": 0,
            "monitoring": "daily",
        },
    )
    assert submitted.status_code == 202, submitted.text
    job = await finished_job(client, submitted.headers["location"])
    assert job["status"] == "succeeded", job
    for candidate in job["result"]["candidates"]:
        fixed = [p["power"] for p in candidate["power_curve"]]
        assert [p["fixed_horizon_power"] for p in candidate["monitored"]] == fixed
        assert all(p["power"] <= f + 1e-9 for p, f in zip(candidate["monitored"], fixed, strict=True))


async def test_daily_monitoring_of_a_multi_cell_selection_is_400_naming_it(client: Client) -> None:
    upload = await client.post("/v1/geo/datasets", content=pretest_csv(), headers={"Content-Type": "text/csv"})
    answer = await client.post(
        "/v1/geo/market-selection",
        json={
            "dataset_id": upload.json()["id"],
            "treatment_sizes": [2],
            "durations": [15],
            "effect_sizes": [0.05],
            "cells": 2,
            "monitoring": "daily",
        },
    )
    assert answer.status_code == 400, answer.text
    assert [p["name"] for p in answer.json()["invalid_params"]] == ["monitoring"]


async def _experiment_on_the_first_days(client: Client, days: int) -> str:
    """GeoLift's walkthrough test whose dataset holds the pre-period and only the first ``days`` test days."""
    with (DATA_DIR / "geolift" / "GeoLift_Test.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["date"] <= f"2021-04-{days:02d}"]
    body = "geo,kpi,date\n" + "".join(f"{r['location']},{r['Y']},{r['date']}\n" for r in rows)
    upload = await client.post("/v1/geo/datasets", content=body, headers={"Content-Type": "text/csv"})
    assert upload.status_code == 201, upload.text
    experiment_id = await create_geolift_experiment(client, dataset_id=upload.json()["id"])
    assert (await client.patch(f"/v1/experiments/{experiment_id}", json={"status": "running"})).status_code == 200
    return experiment_id


async def test_a_running_test_partly_covered_answers_an_interim_sequential_result(client: Client) -> None:
    experiment_id = await _experiment_on_the_first_days(client, 6)
    answer = await client.get(f"/v1/experiments/{experiment_id}/results")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["interim"] is True and body["final"] is False
    assert body["monitoring"]["days_observed"] == 6 and body["monitoring"]["planned_days"] == 15
    assert len(body["monitoring"]["looks"]) == 6 and body["series"][-1]["date"] == "2021-04-06"


async def test_an_interim_result_can_be_read_at_a_fixed_horizon_when_asked(client: Client) -> None:
    experiment_id = await _experiment_on_the_first_days(client, 6)
    answer = await client.get(f"/v1/experiments/{experiment_id}/results", params={"sequential": "false"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["interim"] is True and answer.json()["monitoring"] is None


async def test_a_test_stopped_early_answers_its_last_look_as_its_final_result(client: Client) -> None:
    experiment_id = await _experiment_on_the_first_days(client, 8)
    assert (await client.patch(f"/v1/experiments/{experiment_id}", json={"status": "stopped"})).status_code == 200
    body = (await client.get(f"/v1/experiments/{experiment_id}/results")).json()
    assert body["final"] is True and body["interim"] is False
    assert body["monitoring"]["days_observed"] == 8 and body["monitoring"]["planned_days"] == 15


async def test_tbr_reads_a_partly_covered_test_with_its_own_looks(client: Client) -> None:
    experiment_id = await _experiment_on_the_first_days(client, 6)
    answer = await client.get(
        f"/v1/experiments/{experiment_id}/results", params={"method": "tbr", "sequential": "true"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["monitoring"]["days_observed"] == 6


@pytest.mark.parametrize("method", ["synthetic_control", "tbr"])
async def test_a_test_read_on_its_first_day_answers_an_unbounded_repeated_interval(client: Client, method: str) -> None:
    # Day 1 of 15 is held to about 1e-17, below what a p-value over the pre-period and one day can reach.
    experiment_id = await _experiment_on_the_first_days(client, 1)
    monitoring = (await monitored(client, experiment_id, method))["monitoring"]
    assert monitoring["days_observed"] == 1 and monitoring["decision"] == "continue"
    assert (monitoring["incremental"]["ci_low"], monitoring["incremental"]["ci_high"]) == (None, None)


def test_the_monitoring_chart_marks_the_look_that_crossed_its_boundary() -> None:
    levels = daily_boundaries(15, 15, alpha=0.1)
    p_values = [0.29, 0.74, 0.81, 0.49, 0.69, 0.76, 0.75, 0.42, 0.38, 0.12, 0.05, 0.03, 0.02, 0.015, 0.01]
    looks = [
        GeoLook(
            day=i + 1,
            date=date(2021, 4, 1) + timedelta(days=i),
            p_value_fixed_horizon=p,
            nominal_level=level,
            crossed=p <= level,
        )
        for i, (p, level) in enumerate(zip(p_values, levels, strict=True))
    ]
    first = next(look.day for look in looks if look.crossed)
    svg = render_chart(monitoring_chart(looks, first), "svg").decode()
    assert f"crossed on day {first}" in svg
    assert "crossed on day" not in render_chart(monitoring_chart(looks, None), "svg").decode()
