"""Observations in, results out: lift per channel that matches independent references, and clear 4xx."""

from __future__ import annotations

import math
import uuid
from typing import Any

import asyncpg
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats import proportion as sm_proportion

from stats.sequential import always_valid_difference, mixing_variance_for_horizon
from tests.api.helpers import Client, create_experiment


async def _holdout_experiment(client: Client, metric: str = "proportion", channels: tuple[str, ...] = ("meta",)) -> str:
    body = {
        "kind": "holdout",
        "name": "results test",
        "metric": {"kind": metric},
        "channels": [{"name": c, "holdout_fraction": 0.1} for c in channels],
    }
    return await create_experiment(client, body)


async def _post(client: Client, experiment_id: str, observations: list[dict[str, Any]]) -> Any:
    return await client.post(f"/v1/experiments/{experiment_id}/observations", json={"observations": observations})


CONVERSIONS = [
    {
        "channel": "meta",
        "arm": "treatment",
        "units": 90000,
        "conversions": 4725,
        "spend": 25000,
        "value_per_conversion": 40,
    },
    {"channel": "meta", "arm": "holdout", "units": 10000, "conversions": 480},
]


async def test_proportion_lift_matches_statsmodels_wald_test_and_interval(client: Client) -> None:
    experiment_id = await _holdout_experiment(client)
    assert (await _post(client, experiment_id, CONVERSIONS)).status_code == 200
    response = await client.get(f"/v1/experiments/{experiment_id}/results", params={"confidence_level": 0.9})
    assert response.status_code == 200
    channel = response.json()["channels"][0]
    test = sm_proportion.test_proportions_2indep(4725, 90000, 480, 10000, method="wald", compare="diff")
    low, high = sm_proportion.confint_proportions_2indep(
        4725, 90000, 480, 10000, method="wald", compare="diff", alpha=0.1
    )
    assert channel["lift"]["absolute"]["estimate"] == pytest.approx(4725 / 90000 - 0.048, abs=1e-12)
    assert channel["lift"]["absolute"]["ci_low"] == pytest.approx(low, abs=1e-10)
    assert channel["lift"]["absolute"]["ci_high"] == pytest.approx(high, abs=1e-10)
    assert channel["p_value"] == pytest.approx(test.pvalue, abs=1e-10)
    assert channel["treatment"]["rate"] == pytest.approx(0.0525)


async def test_relative_lift_interval_matches_statsmodels_log_ratio(client: Client) -> None:
    experiment_id = await _holdout_experiment(client)
    await _post(client, experiment_id, CONVERSIONS)
    channel = (await client.get(f"/v1/experiments/{experiment_id}/results")).json()["channels"][0]
    low, high = sm_proportion.confint_proportions_2indep(
        4725, 90000, 480, 10000, method="log", compare="ratio", alpha=0.05
    )
    assert channel["lift"]["relative"]["ci_low"] == pytest.approx(low - 1, abs=1e-8)
    assert channel["lift"]["relative"]["ci_high"] == pytest.approx(high - 1, abs=1e-8)


async def test_incremental_conversions_iroas_and_cost_follow_from_the_lift(client: Client) -> None:
    experiment_id = await _holdout_experiment(client)
    await _post(client, experiment_id, CONVERSIONS)
    channel = (await client.get(f"/v1/experiments/{experiment_id}/results")).json()["channels"][0]
    incremental = (4725 / 90000 - 0.048) * 90000
    assert channel["incremental"]["estimate"] == pytest.approx(incremental)
    assert channel["iroas"]["estimate"] == pytest.approx(incremental * 40 / 25000)
    assert channel["cost_per_incremental"]["estimate"] == pytest.approx(25000 / incremental)
    assert channel["decision"]["action"] in {"scale", "iterate", "stop", "investigate"}
    assert channel["decision"]["reason"]


async def test_mean_lift_matches_scipy_welch_standard_error(client: Client) -> None:
    experiment_id = await _holdout_experiment(client, metric="mean")
    n1, s1, q1 = 50000, 640000.0, 95000000.0
    n2, s2, q2 = 50000, 615000.0, 91000000.0
    await _post(
        client,
        experiment_id,
        [
            {"channel": "meta", "arm": "treatment", "units": n1, "sum": s1, "sum_squares": q1},
            {"channel": "meta", "arm": "holdout", "units": n2, "sum": s2, "sum_squares": q2},
        ],
    )
    channel = (await client.get(f"/v1/experiments/{experiment_id}/results")).json()["channels"][0]
    m1, m2 = s1 / n1, s2 / n2
    v1, v2 = (q1 - n1 * m1**2) / (n1 - 1), (q2 - n2 * m2**2) / (n2 - 1)
    welch = scipy_stats.ttest_ind_from_stats(m1, math.sqrt(v1), n1, m2, math.sqrt(v2), n2, equal_var=False)
    assert channel["lift"]["absolute"]["estimate"] == pytest.approx(m1 - m2)
    assert channel["p_value"] == pytest.approx(welch.pvalue, abs=1e-4)
    assert channel["treatment"]["std_error"] == pytest.approx(math.sqrt(v1 / n1))


async def test_holm_adjusts_p_values_across_channels(client: Client) -> None:
    experiment_id = await _holdout_experiment(client, channels=("meta", "search"))
    await _post(
        client,
        experiment_id,
        [
            {"channel": "meta", "arm": "treatment", "units": 90000, "conversions": 4725},
            {"channel": "meta", "arm": "holdout", "units": 10000, "conversions": 480},
            {"channel": "search", "arm": "treatment", "units": 90000, "conversions": 4600},
            {"channel": "search", "arm": "holdout", "units": 10000, "conversions": 490},
        ],
    )
    channels = (await client.get(f"/v1/experiments/{experiment_id}/results")).json()["channels"]
    raw = sorted(c["p_value"] for c in channels)
    adjusted = sorted(c["p_value_adjusted"] for c in channels)
    assert adjusted[0] == pytest.approx(min(1.0, 2 * raw[0]))
    assert adjusted[1] == pytest.approx(max(adjusted[0], min(1.0, raw[1])))


async def test_cuped_reports_theta_and_a_variance_reduction(client: Client) -> None:
    experiment_id = await _holdout_experiment(client, metric="mean")
    await _post(
        client,
        experiment_id,
        [
            {
                "channel": "meta",
                "arm": "treatment",
                "units": 1000,
                "sum": 10500,
                "sum_squares": 150000,
                "covariate_sum": 10000,
                "covariate_sum_squares": 140000,
                "cross_sum": 142000,
            },
            {
                "channel": "meta",
                "arm": "holdout",
                "units": 1000,
                "sum": 10000,
                "sum_squares": 140000,
                "covariate_sum": 10020,
                "covariate_sum_squares": 140500,
                "cross_sum": 138000,
            },
        ],
    )
    channel = (await client.get(f"/v1/experiments/{experiment_id}/results")).json()["channels"][0]
    assert channel["cuped"]["variance_reduction"] > 0.5
    assert "CUPED" in channel["method"]


async def test_sequential_results_fix_the_mixing_variance_at_the_first_look(client: Client) -> None:
    experiment_id = await _holdout_experiment(client)
    await _post(client, experiment_id, CONVERSIONS)
    first = (await client.get(f"/v1/experiments/{experiment_id}/results", params={"sequential": "true"})).json()
    fixed = (await client.get(f"/v1/experiments/{experiment_id}/results")).json()
    later = (await client.get(f"/v1/experiments/{experiment_id}/results", params={"sequential": "true"})).json()
    sequential_interval = first["channels"][0]["lift"]["absolute"]
    fixed_interval = fixed["channels"][0]["lift"]["absolute"]
    assert first["sequential"] is True
    assert (
        sequential_interval["ci_high"] - sequential_interval["ci_low"]
        > fixed_interval["ci_high"] - fixed_interval["ci_low"]
    )
    assert later["channels"][0]["lift"] == first["channels"][0]["lift"]
    assert "mixture SPRT" in first["channels"][0]["method"]


async def test_a_sequential_result_says_why_its_relative_lift_is_null(client: Client) -> None:
    experiment_id = await _holdout_experiment(client)
    await _post(client, experiment_id, CONVERSIONS)
    sequential = (await client.get(f"/v1/experiments/{experiment_id}/results", params={"sequential": "true"})).json()
    fixed = (await client.get(f"/v1/experiments/{experiment_id}/results")).json()
    lift = sequential["channels"][0]["lift"]
    assert lift["relative"] == {"estimate": None, "ci_low": None, "ci_high": None}
    assert "absolute lift" in lift["relative_unavailable"]
    assert "sequential=false" in lift["relative_unavailable"]
    assert fixed["channels"][0]["lift"]["relative_unavailable"] is None
    assert fixed["channels"][0]["lift"]["relative"]["estimate"] == pytest.approx((4725 / 90000) / 0.048 - 1)


async def test_a_sequential_look_combines_with_the_earlier_looks(client: Client, database_url: str) -> None:
    """Day 1 shows a clear lift; day 2's totals alone would not. Day 2 reports the running minimum of
    the p-value and the running intersection of the bounds, each look's own figures recomputed here."""
    experiment_id = await _holdout_experiment(client)
    day1 = [
        {"channel": "meta", "arm": "treatment", "units": 90000, "conversions": 4950},
        {"channel": "meta", "arm": "holdout", "units": 10000, "conversions": 450},
    ]
    day2 = [
        {"channel": "meta", "arm": "treatment", "units": 180000, "conversions": 9000},
        {"channel": "meta", "arm": "holdout", "units": 20000, "conversions": 990},
    ]
    await _post(client, experiment_id, day1)
    first = (await client.get(f"/v1/experiments/{experiment_id}/results", params={"sequential": "true"})).json()
    await _post(client, experiment_id, day2)
    second = (await client.get(f"/v1/experiments/{experiment_id}/results", params={"sequential": "true"})).json()
    connection = await asyncpg.connect(database_url)
    try:
        tau2 = await connection.fetchval(
            "SELECT mixing_variance FROM sequential_mixing_variances WHERE experiment_id = $1", uuid.UUID(experiment_id)
        )
    finally:
        await connection.close()
    alone = always_valid_difference(
        9000 / 180000 - 990 / 20000,
        0.05 * 0.95 / 180000 + 0.0495 * 0.9505 / 20000,
        mixing_variance=tau2,
        alpha=0.05,
    )
    day1_lift, day2_lift = first["channels"][0], second["channels"][0]
    assert day1_lift["p_value"] < 0.05 and alone.p_value is not None and alone.p_value > 0.05
    assert day2_lift["p_value"] == pytest.approx(min(day1_lift["p_value"], alone.p_value))
    assert day2_lift["lift"]["absolute"]["ci_low"] == pytest.approx(
        max(day1_lift["lift"]["absolute"]["ci_low"], alone.ci_low)
    )
    assert day2_lift["lift"]["absolute"]["ci_high"] == pytest.approx(
        min(day1_lift["lift"]["absolute"]["ci_high"], alone.ci_high)
    )
    assert "2 looks so far" in day2_lift["method"]


async def test_a_planned_sample_size_tunes_the_mixture_to_the_planned_end(client: Client, database_url: str) -> None:
    body = {
        "kind": "holdout",
        "name": "planned",
        "metric": {"kind": "proportion"},
        "channels": [{"name": "meta", "holdout_fraction": 0.1}],
        "planned_units": 1_000_000,
    }
    created = (await client.post("/v1/experiments", json=body)).json()
    assert created["planned_units"] == 1_000_000
    await _post(client, created["id"], CONVERSIONS)
    await client.get(f"/v1/experiments/{created['id']}/results", params={"sequential": "true"})
    connection = await asyncpg.connect(database_url)
    try:
        tau2 = await connection.fetchval(
            "SELECT mixing_variance FROM sequential_mixing_variances WHERE experiment_id = $1", uuid.UUID(created["id"])
        )
    finally:
        await connection.close()
    p_t, p_h = 4725 / 90000, 480 / 10000
    planned_variance = p_t * (1 - p_t) / 900_000 + p_h * (1 - p_h) / 100_000
    assert tau2 == pytest.approx(mixing_variance_for_horizon(planned_variance, alpha=0.05), rel=1e-12)


async def test_results_carry_a_forest_plot(client: Client) -> None:
    experiment_id = await _holdout_experiment(client)
    await _post(client, experiment_id, CONVERSIONS)
    chart = (await client.get(f"/v1/experiments/{experiment_id}/results")).json()["chart"]
    assert chart["$schema"].endswith("vega-lite/v5.json")
    assert chart["data"]["values"][0]["channel"] == "meta"


async def test_results_without_observations_are_409_saying_what_is_missing(client: Client) -> None:
    experiment_id = await _holdout_experiment(client)
    await _post(client, experiment_id, CONVERSIONS[:1])
    response = await client.get(f"/v1/experiments/{experiment_id}/results")
    assert response.status_code == 409
    assert "meta/holdout" in response.json()["detail"]


async def test_reposting_replaces_the_totals_and_keeps_history(client: Client) -> None:
    experiment_id = await _holdout_experiment(client)
    await _post(client, experiment_id, CONVERSIONS)
    again = await _post(client, experiment_id, [{**CONVERSIONS[1], "conversions": 500}])
    assert again.json()["replaced"] == 1
    channel = (await client.get(f"/v1/experiments/{experiment_id}/results")).json()["channels"][0]
    assert channel["holdout"]["rate"] == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("observation", "field"),
    [
        ({"channel": "meta", "arm": "holdout", "units": 100, "conversions": 101}, "observations[1].conversions"),
        ({"channel": "meta", "arm": "holdout", "units": -1, "conversions": 0}, "observations[1].units"),
        ({"channel": "meta", "arm": "holdout", "units": 0, "conversions": 0}, "observations[1].units"),
        ({"channel": "tiktok", "arm": "holdout", "units": 10, "conversions": 1}, "observations[1].channel"),
        ({"channel": "meta", "arm": "holdout", "units": 10}, "observations[1].conversions"),
        ({"channel": "meta", "arm": "holdout", "units": 10, "conversions": 1, "spend": 5}, "observations[1].spend"),
    ],
)
async def test_bad_observations_are_400_naming_the_field_and_store_nothing(
    client: Client, observation: dict[str, Any], field: str
) -> None:
    experiment_id = await _holdout_experiment(client)
    response = await _post(client, experiment_id, [CONVERSIONS[0], observation])
    assert response.status_code == 400, response.text
    assert field in [p["name"] for p in response.json()["invalid_params"]]
    results = await client.get(f"/v1/experiments/{experiment_id}/results")
    assert "meta/treatment" in results.json()["detail"]


async def test_sums_inconsistent_with_sums_of_squares_are_400(client: Client) -> None:
    experiment_id = await _holdout_experiment(client, metric="mean")
    response = await _post(
        client,
        experiment_id,
        [
            {"channel": "meta", "arm": "holdout", "units": 100, "sum": 1000, "sum_squares": 10},
        ],
    )
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"].startswith("observations[0]")


async def test_sequential_results_of_sums_too_large_for_the_mixture_are_409_naming_the_stored_channel(
    client: Client,
) -> None:
    # they were a 400 naming `final_variance`, which no request has
    experiment_id = await _holdout_experiment(client, metric="mean")
    huge = [
        {"channel": "meta", "arm": "treatment", "units": 3, "sum": 1e154, "sum_squares": 1.7e308},
        {"channel": "meta", "arm": "holdout", "units": 3, "sum": -1e154, "sum_squares": 1.7e308},
    ]
    assert (await _post(client, experiment_id, huge)).status_code == 200
    response = await client.get(f"/v1/experiments/{experiment_id}/results", params={"sequential": "true"})
    assert response.status_code == 409
    assert response.json()["invalid_params"][0]["name"] == "observations[meta]"
    assert (await client.get(f"/v1/experiments/{experiment_id}/results")).status_code == 200
