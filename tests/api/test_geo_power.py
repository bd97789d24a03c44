"""`POST /v1/geo/power` on GeoLift's walkthrough history (Meta GeoLift's `GeoLift_PreTest`, 40 cities x 90 days).

GeoLift 2.7.5's market selection on this panel (alpha 0.1, one lookback window, cost per KPI 7.5) prices
chicago + cincinnati + houston + portland for 15 days at an effect of 0.05 at an investment of 74,118:
``cpic * sum(treated KPI over the window) * effect``, the formula the investment here follows.
"""

from __future__ import annotations

import csv
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import DATA_DIR

Client = AsyncTestClient[Litestar]
CSV = {"Content-Type": "text/csv"}
PROBLEM = "application/problem+json"
EFFECTS = [0.0, 0.05, 0.1, 0.15, 0.2]


def treated_kpi(markets: list[str], last_days: int) -> float:
    with (DATA_DIR / "geolift" / "GeoLift_PreTest.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    dates = sorted({r["date"] for r in rows})[-last_days:]
    return sum(float(r["Y"]) for r in rows if r["location"] in markets and r["date"] in dates)


async def power(client: Client, dataset_id: str, **overrides: Any) -> Any:
    body: dict[str, Any] = {
        "dataset_id": dataset_id,
        "treatment_markets": ["chicago", "cincinnati", "houston", "portland"],
        "durations": [10, 15],
        "effect_sizes": EFFECTS,
        "alpha": 0.1,
        "cost_per_kpi": 7.5,
    }
    body.update(overrides)
    return await client.post("/v1/geo/power", json=body)


async def test_investment_at_the_mde_matches_geolift(client: Client, dataset_id: str) -> None:
    response = await power(client, dataset_id)
    assert response.status_code == 200, response.text
    fifteen = next(d for d in response.json()["durations"] if d["duration"] == 15)
    assert fifteen["mde"] == 0.05
    assert fifteen["investment"] == pytest.approx(74_118.375)
    markets = ["chicago", "cincinnati", "houston", "portland"]
    assert fifteen["treated_kpi"] == pytest.approx(treated_kpi(markets, 15))


async def test_power_is_a_probability_with_false_positive_rate_near_alpha(client: Client, dataset_id: str) -> None:
    """Power at effect 0 is the predicted false-positive rate: a share of the 90 noise paths, at most alpha
    without drift and off it by what the drift the residuals carry makes the test reject (stats.geo.power:
    11.1% at 15 days on this walkthrough, 10 of 90 paths)."""
    response = await power(client, dataset_id, effect_sizes=[0.0, 0.01, 0.02, 0.03, 0.05])
    curves = [d["power_curve"] for d in response.json()["durations"]]
    assert all(abs(curve[0]["power"] - 0.1) <= 0.03 for curve in curves)
    assert all(curve[0]["power"] * 90 == pytest.approx(round(curve[0]["power"] * 90)) for curve in curves)
    assert any(0.0 < point["power"] < 1.0 for curve in curves for point in curve[1:])
    assert all(point["detected"] in (0.0, 1.0) for curve in curves for point in curve)


async def test_exact_mde_lies_between_grid_points(client: Client, dataset_id: str) -> None:
    response = await power(client, dataset_id)
    for design in response.json()["durations"]:
        assert 0.0 < design["mde_exact"] <= design["mde"]


async def test_power_answer_reports_fit_warnings_and_chart(client: Client, dataset_id: str) -> None:
    body = (await power(client, dataset_id)).json()
    assert body["history"] == {"start": "2021-01-01", "end": "2021-03-31"}
    assert 0.0 < body["treatment_share"] < 1.0
    assert body["chart"]["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
    assert all(d["fit"]["scaled_l2_imbalance"] >= 0.0 for d in body["durations"])
    # 90 days is more than 4 x 15 and 25 days before the window; 40 markets; 15% of the KPI treated.
    assert body["warnings"] == []


async def test_short_history_is_warned_about(client: Client, dataset_id: str) -> None:
    body = (await power(client, dataset_id, durations=[30])).json()
    assert any("4 times" in w for w in body["warnings"])


async def test_unknown_dataset_is_404(client: Client) -> None:
    response = await power(client, "00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_unknown_market_is_400_naming_the_field(client: Client, dataset_id: str) -> None:
    response = await power(client, dataset_id, treatment_markets=["chicago", "atlantis"])
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "treatment_markets"
    assert "atlantis" in response.json()["detail"]


async def test_duration_longer_than_the_history_allows_is_400(client: Client, dataset_id: str) -> None:
    response = await power(client, dataset_id, durations=[89])
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "durations"


async def test_empty_effect_grid_is_400(client: Client, dataset_id: str) -> None:
    response = await power(client, dataset_id, effect_sizes=[])
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"].startswith("effect_sizes")


async def test_history_outside_the_dataset_is_400(client: Client, dataset_id: str) -> None:
    response = await power(client, dataset_id, history={"start": "2020-12-01", "end": "2021-03-31"})
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "history"


async def test_one_sided_power_detects_only_its_direction(client: Client, dataset_id: str) -> None:
    body = (await power(client, dataset_id, side="larger", effect_sizes=[-0.1, 0.0, 0.1], durations=[15])).json()
    curve = {p["effect_size"]: p["power"] for p in body["durations"][0]["power_curve"]}
    assert curve[0.1] > 0.9
    assert curve[-0.1] < 0.1


async def test_augmented_synthetic_control_is_simulated_too(client: Client, dataset_id: str) -> None:
    response = await power(client, dataset_id, method="augmented_synthetic_control", durations=[15])
    assert response.status_code == 200, response.text
    assert response.json()["durations"][0]["mde"] is not None


async def test_each_duration_carries_a_backtest_on_the_history_at_its_mde(client: Client, dataset_id: str) -> None:
    body = (await power(client, dataset_id)).json()
    for design in body["durations"]:
        backtest = design["backtest"]
        assert backtest["windows"] == 20
        assert backtest["effect"] == design["mde"]
        assert 0.0 <= backtest["false_positive_rate"] <= 1.0
        assert 0.0 <= backtest["detection_rate"] <= 1.0
        assert backtest["placebo_rmse"] > 0.0


async def test_a_test_that_would_eat_the_history_before_it_is_refused(client: Client, dataset_id: str) -> None:
    """Each window needs as many days before it as it lasts (60 + 60 > 90 days of history)."""
    response = await power(client, dataset_id, durations=[60])
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "durations"


async def test_the_investment_of_a_go_dark_design_is_positive(client: Client, dataset_id: str) -> None:
    body = (await power(client, dataset_id, side="smaller", effect_sizes=[0, -0.05, -0.1], durations=[15])).json()
    design = body["durations"][0]
    assert design["mde"] == -0.05
    assert design["investment"] == pytest.approx(7.5 * design["treated_kpi"] * 0.05)


async def test_the_exact_mde_does_not_depend_on_how_coarse_the_grid_is(client: Client, dataset_id: str) -> None:
    fine = (await power(client, dataset_id, effect_sizes=[0, 0.05], durations=[15])).json()["durations"][0]
    coarse = (await power(client, dataset_id, effect_sizes=[0, 5.0], durations=[15])).json()["durations"][0]
    assert coarse["mde_exact"] == pytest.approx(fine["mde_exact"], abs=2e-4)


async def test_repeated_durations_and_effects_are_simulated_once(client: Client, dataset_id: str) -> None:
    body = (await power(client, dataset_id, durations=[15, 15], effect_sizes=[0, 0.05, 0.05])).json()
    assert [d["duration"] for d in body["durations"]] == [15]
    assert [p["effect_size"] for p in body["durations"][0]["power_curve"]] == [0, 0.05]


async def test_a_deleted_dataset_is_not_answered_from_the_panel_cache(client: Client, dataset_id: str) -> None:
    assert (await power(client, dataset_id)).status_code == 200
    assert (await client.delete(f"/v1/geo/datasets/{dataset_id}")).status_code == 200
    assert (await power(client, dataset_id)).status_code == 404


async def test_each_durations_backtest_compares_the_other_design_method_on_the_same_windows(
    client: Client, dataset_id: str
) -> None:
    body = (await power(client, dataset_id)).json()
    for design in body["durations"]:
        backtest = design["backtest"]
        assert backtest["method"] == "synthetic_control"
        compared = {c["method"]: c for c in backtest["compared"]}
        assert set(compared) == {"synthetic_control", "augmented_synthetic_control"}
        assert compared["synthetic_control"]["false_positive_rate"] == backtest["false_positive_rate"]

        def rank(c: dict[str, Any]) -> tuple[bool, float, float, float]:
            excess = c["false_positive_excess_p_value"] < 0.05
            return (excess, -c["detection_rate"], c["placebo_rmse"], c["false_positive_rate"])

        best = min(compared.values(), key=rank)["method"]
        assert backtest["best_method"] == (None if best == "synthetic_control" else best)


async def test_a_history_whose_kpi_is_all_zero_is_409_for_power_and_market_selection(client: Client) -> None:
    rows = [{"date": f"2024-01-{day:02d}", "geo": f"m{g}", "kpi": 0.0} for g in range(6) for day in range(1, 31)]
    dataset = (await client.post("/v1/geo/datasets", json={"rows": rows})).json()["id"]
    power = await client.post(
        "/v1/geo/power",
        json={"dataset_id": dataset, "treatment_markets": ["m0"], "durations": [5], "effect_sizes": [0, 0.1]},
    )
    selection = await client.post(
        "/v1/geo/market-selection",
        json={"dataset_id": dataset, "treatment_sizes": [1], "durations": [5], "effect_sizes": [0, 0.1]},
    )
    for response in (power, selection):
        assert response.status_code == 409, response.text
        assert "KPI is 0 on every market and date" in response.json()["detail"]


async def test_excluding_the_only_market_with_kpi_is_409_too(client: Client) -> None:
    rows = [
        {"date": f"2024-01-{day:02d}", "geo": f"m{g}", "kpi": 100.0 if g == 6 else 0.0}
        for g in range(7)
        for day in range(1, 31)
    ]
    dataset = (await client.post("/v1/geo/datasets", json={"rows": rows})).json()["id"]
    body = {
        "dataset_id": dataset,
        "treatment_markets": ["m0"],
        "exclude_from_controls": ["m6"],
        "durations": [5],
        "effect_sizes": [0, 0.1],
    }
    response = await client.post("/v1/geo/power", json=body)
    assert response.status_code == 409, response.text
    assert "once exclude_from_controls are left out" in response.json()["detail"]


async def test_a_matched_pair_design_on_an_all_zero_kpi_is_409(client: Client) -> None:
    rows = [
        {"date": f"2024-01-{day:02d}", "geo": f"m{g}", "kpi": 0.0, "spend": 10.0}
        for g in range(8)
        for day in range(1, 31)
    ]
    dataset = (await client.post("/v1/geo/datasets", json={"rows": rows})).json()["id"]
    body = {
        "dataset_id": dataset,
        "evaluation_period": {"start": "2024-01-24", "end": "2024-01-30"},
        "budgets": [1000],
    }
    response = await client.post("/v1/geo/matched-pairs", json=body)
    assert response.status_code == 409, response.text
    assert "KPI is 0 on every market and date" in response.json()["detail"]


async def test_effect_sizes_of_2_5_to_10_are_answered_with_a_warning_asking_whether_percents_were_meant(
    client: Client, dataset_id: str
) -> None:
    response = await power(client, dataset_id, effect_sizes=[0, 2.5, 5, 10], durations=[10])
    assert response.status_code == 200, response.text
    warnings = response.json()["warnings"]
    percent = [w for w in warnings if w.startswith("effect_sizes[1]:")]
    assert len(percent) == 1
    assert "2.5 (+250%), 5 (+500%), 10 (+1000%)" in percent[0]
    assert "send 0.025, 0.05, 0.1" in percent[0]
    usual = await power(client, dataset_id, durations=[10])
    assert not [w for w in usual.json()["warnings"] if w.startswith("effect_sizes")]
