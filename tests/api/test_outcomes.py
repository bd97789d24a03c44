"""Unit-level outcomes in, results out: joined with the assignments in SQL, checked against statsmodels
run on the same unit-level data, with strays counted and bad rows refused."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from statsmodels.stats import proportion as sm_proportion
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from tests.api.helpers import Client, create_experiment, create_geolift_experiment

UNITS = [f"user-{i}" for i in range(4000)]


async def _holdout_experiment(client: Client, metric: str = "mean", channels: tuple[str, ...] = ("meta",)) -> str:
    body = {
        "kind": "holdout",
        "name": "outcomes test",
        "metric": {"kind": metric},
        "channels": [{"name": c, "holdout_fraction": 0.3} for c in channels],
        "salt": "outcomes-salt",
    }
    return await create_experiment(client, body)


async def _assign(client: Client, experiment_id: str, units: list[str], channel: str = "meta") -> np.ndarray:
    """Assign the units; returns a boolean array, True where the unit is in the channel's holdout."""
    response = await client.post(f"/v1/experiments/{experiment_id}/assignments", json={"units": units})
    assert response.status_code == 200
    return np.array([a["arms"][channel] == "holdout" for a in response.json()["assignments"]])


def _csv(units: list[str], values: np.ndarray, covariates: np.ndarray | None = None) -> bytes:
    if covariates is None:
        lines = ["unit,value", *(f"{u},{v!r}" for u, v in zip(units, values.tolist(), strict=True))]
    else:
        rows = zip(units, values.tolist(), covariates.tolist(), strict=True)
        lines = ["unit,value,covariate", *(f"{u},{v!r},{x!r}" for u, v, x in rows)]
    return ("\n".join(lines) + "\n").encode()


async def _post_csv(client: Client, experiment_id: str, body: bytes) -> Any:
    return await client.post(
        f"/v1/experiments/{experiment_id}/outcomes", content=body, headers={"Content-Type": "text/csv"}
    )


async def _post_json(client: Client, experiment_id: str, outcomes: list[dict[str, Any]]) -> Any:
    return await client.post(f"/v1/experiments/{experiment_id}/outcomes", json={"outcomes": outcomes})


async def _results(client: Client, experiment_id: str, **params: Any) -> Any:
    return await client.get(f"/v1/experiments/{experiment_id}/results", params=params)


async def test_mean_lift_from_csv_outcomes_matches_statsmodels_on_the_unit_data(client: Client) -> None:
    experiment_id = await _holdout_experiment(client)
    holdout = await _assign(client, experiment_id, UNITS)
    rng = np.random.default_rng(11)
    values = np.round(rng.gamma(2.0, 6.0, len(UNITS)) * np.where(holdout, 1.0, 1.08), 4)
    upload = await _post_csv(client, experiment_id, _csv(UNITS, values))
    assert upload.status_code == 200, upload.text
    response = await _results(client, experiment_id, confidence_level=0.9)
    assert response.status_code == 200, response.text
    body = response.json()
    channel = body["channels"][0]
    compare = CompareMeans(DescrStatsW(values[~holdout]), DescrStatsW(values[holdout]))
    _, p_value = compare.ztest_ind(usevar="unequal")
    low, high = compare.zconfint_diff(alpha=0.1, usevar="unequal")
    assert body["data_source"] == "outcomes"
    assert channel["treatment"]["units"] == int((~holdout).sum())
    assert channel["holdout"]["units"] == int(holdout.sum())
    assert channel["lift"]["absolute"]["estimate"] == pytest.approx(values[~holdout].mean() - values[holdout].mean())
    assert channel["lift"]["absolute"]["ci_low"] == pytest.approx(low, rel=1e-9)
    assert channel["lift"]["absolute"]["ci_high"] == pytest.approx(high, rel=1e-9)
    assert channel["p_value"] == pytest.approx(p_value, rel=1e-9)


async def test_conversion_lift_from_json_outcomes_matches_statsmodels_wald_test(client: Client) -> None:
    experiment_id = await _holdout_experiment(client, metric="proportion")
    holdout = await _assign(client, experiment_id, UNITS)
    rng = np.random.default_rng(5)
    converted = rng.random(len(UNITS)) < np.where(holdout, 0.10, 0.13)
    outcomes = [{"unit": u, "value": int(c)} for u, c in zip(UNITS, converted.tolist(), strict=True)]
    assert (await _post_json(client, experiment_id, outcomes)).status_code == 200
    channel = (await _results(client, experiment_id)).json()["channels"][0]
    count_t, n_t = int(converted[~holdout].sum()), int((~holdout).sum())
    count_h, n_h = int(converted[holdout].sum()), int(holdout.sum())
    test = sm_proportion.test_proportions_2indep(count_t, n_t, count_h, n_h, method="wald", compare="diff")
    low, high = sm_proportion.confint_proportions_2indep(count_t, n_t, count_h, n_h, method="wald", compare="diff")
    assert channel["treatment"]["rate"] == pytest.approx(count_t / n_t)
    assert channel["p_value"] == pytest.approx(test.pvalue, rel=1e-9)
    assert channel["lift"]["absolute"]["ci_low"] == pytest.approx(low, rel=1e-9)
    assert channel["lift"]["absolute"]["ci_high"] == pytest.approx(high, rel=1e-9)


async def test_cuped_from_unit_covariates_matches_the_adjusted_unit_data(client: Client) -> None:
    experiment_id = await _holdout_experiment(client)
    holdout = await _assign(client, experiment_id, UNITS)
    rng = np.random.default_rng(3)
    covariates = np.round(rng.normal(20, 5, len(UNITS)), 4)
    values = np.round(covariates * 0.8 + rng.normal(0, 2, len(UNITS)) + np.where(holdout, 0.0, 0.3), 4)
    assert (await _post_csv(client, experiment_id, _csv(UNITS, values, covariates))).status_code == 200
    channel = (await _results(client, experiment_id)).json()["channels"][0]
    theta = np.cov(values, covariates)[0, 1] / covariates.var(ddof=1)  # Deng et al. 2013, pooled arms
    adjusted = values - theta * (covariates - covariates.mean())
    compare = CompareMeans(DescrStatsW(adjusted[~holdout]), DescrStatsW(adjusted[holdout]))
    low, high = compare.zconfint_diff(alpha=0.05, usevar="unequal")
    assert channel["cuped"]["theta"] == pytest.approx(theta, rel=1e-9)
    assert channel["lift"]["absolute"]["estimate"] == pytest.approx(
        adjusted[~holdout].mean() - adjusted[holdout].mean(), rel=1e-9
    )
    assert channel["lift"]["absolute"]["ci_low"] == pytest.approx(low, rel=1e-8)
    assert channel["lift"]["absolute"]["ci_high"] == pytest.approx(high, rel=1e-8)


async def test_each_channel_is_analysed_by_its_own_independent_arms(client: Client) -> None:
    experiment_id = await _holdout_experiment(client, channels=("meta", "search"))
    response = await client.post(f"/v1/experiments/{experiment_id}/assignments", json={"units": UNITS})
    arms = response.json()["assignments"]
    search_holdout = np.array([a["arms"]["search"] == "holdout" for a in arms])
    values = np.where(search_holdout, 10.0, 11.0) + np.arange(len(UNITS)) % 7
    await _post_csv(client, experiment_id, _csv(UNITS, values))
    channels = {c["channel"]: c for c in (await _results(client, experiment_id)).json()["channels"]}
    assert channels["search"]["holdout"]["units"] == int(search_holdout.sum())
    assert channels["search"]["lift"]["absolute"]["estimate"] == pytest.approx(
        values[~search_holdout].mean() - values[search_holdout].mean()
    )
    assert channels["meta"]["p_value_adjusted"] >= channels["meta"]["p_value"]


async def test_units_never_assigned_are_counted_named_and_left_out(client: Client) -> None:
    experiment_id = await _holdout_experiment(client)
    await _assign(client, experiment_id, UNITS[:3000])
    values = np.ones(len(UNITS))
    upload = (await _post_csv(client, experiment_id, _csv(UNITS, values))).json()
    assert upload["received"] == 4000
    assert upload["inserted"] == 4000
    assert upload["unassigned"] == 1000
    assert upload["unassigned_examples"] == sorted(UNITS[3000:])[:10]
    body = (await _results(client, experiment_id)).json()
    assert body["outcomes"] == {"units_with_outcome": 3000, "unassigned_outcomes": 1000, "assigned_without_outcome": 0}
    channel = body["channels"][0]
    assert channel["treatment"]["units"] + channel["holdout"]["units"] == 3000


async def test_assigned_units_without_an_outcome_are_reported_per_arm(client: Client) -> None:
    experiment_id = await _holdout_experiment(client)
    await _assign(client, experiment_id, UNITS)
    await _post_csv(client, experiment_id, _csv(UNITS[:2500], np.ones(2500)))
    body = (await _results(client, experiment_id)).json()
    assert body["outcomes"]["assigned_without_outcome"] == 1500
    assert body["outcomes"]["units_with_outcome"] == 2500
    warnings = " ".join(body["channels"][0]["warnings"])
    assert "have no outcome and are left out" in warnings


async def test_resending_outcomes_replaces_them_and_leaves_results_unchanged(client: Client) -> None:
    experiment_id = await _holdout_experiment(client)
    await _assign(client, experiment_id, UNITS)
    body = _csv(UNITS, np.arange(len(UNITS), dtype=float) % 13)
    await _post_csv(client, experiment_id, body)
    first = (await _results(client, experiment_id)).json()
    again = (await _post_csv(client, experiment_id, body)).json()
    assert (again["inserted"], again["replaced"]) == (0, 4000)
    assert (await _results(client, experiment_id)).json()["channels"] == first["channels"]


async def test_a_replaced_outcome_changes_the_results(client: Client) -> None:
    experiment_id = await _holdout_experiment(client)
    holdout = await _assign(client, experiment_id, UNITS)
    await _post_csv(client, experiment_id, _csv(UNITS, np.ones(len(UNITS))))
    treated_unit = UNITS[int(np.flatnonzero(~holdout)[0])]
    await _post_json(client, experiment_id, [{"unit": treated_unit, "value": 1.0 + (~holdout).sum()}])
    channel = (await _results(client, experiment_id)).json()["channels"][0]
    assert channel["treatment"]["mean"] == pytest.approx(2.0)


async def test_spend_set_per_channel_gives_iroas_from_outcomes(client: Client) -> None:
    experiment_id = await _holdout_experiment(client, metric="proportion")
    holdout = await _assign(client, experiment_id, UNITS)
    converted = (np.arange(len(UNITS)) % np.where(holdout, 10, 8)) == 0
    outcomes = [{"unit": u, "value": int(c)} for u, c in zip(UNITS, converted.tolist(), strict=True)]
    await _post_json(client, experiment_id, outcomes)
    spend = {"channels": [{"channel": "meta", "spend": 500.0, "value_per_conversion": 40.0}]}
    assert (await client.put(f"/v1/experiments/{experiment_id}/spend", json=spend)).status_code == 200
    channel = (await _results(client, experiment_id)).json()["channels"][0]
    incremental = (converted[~holdout].mean() - converted[holdout].mean()) * (~holdout).sum()
    assert channel["incremental"]["estimate"] == pytest.approx(incremental)
    assert channel["iroas"]["estimate"] == pytest.approx(incremental * 40.0 / 500.0)
    assert channel["cost_per_incremental"]["estimate"] == pytest.approx(500.0 / incremental)


async def test_a_bad_csv_value_names_line_and_column_and_stores_nothing(client: Client) -> None:
    experiment_id = await _holdout_experiment(client)
    await _assign(client, experiment_id, UNITS[:10])
    response = await _post_csv(client, experiment_id, b"unit,value\nuser-0,1.5\nuser-1,abc\n")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["invalid_params"][0]["name"] == "line 3, column value"
    assert (await _results(client, experiment_id)).status_code == 409


@pytest.mark.parametrize("value", ["nan", "inf", "1e400", "1_000"])
async def test_non_finite_or_odd_numbers_are_refused(client: Client, value: str) -> None:
    experiment_id = await _holdout_experiment(client)
    response = await _post_csv(client, experiment_id, f"unit,value\nuser-0,{value}\n".encode())
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "line 2, column value"


async def test_a_wrong_header_is_refused(client: Client) -> None:
    experiment_id = await _holdout_experiment(client)
    response = await _post_csv(client, experiment_id, b"user,revenue\nu1,3\n")
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "line 1"


async def test_a_conversion_value_other_than_0_or_1_names_the_row(client: Client) -> None:
    experiment_id = await _holdout_experiment(client, metric="proportion")
    response = await _post_json(client, experiment_id, [{"unit": "u1", "value": 1}, {"unit": "u2", "value": 2}])
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "outcomes[1].value"


async def test_a_unit_repeated_within_an_upload_is_refused_naming_both_lines(client: Client) -> None:
    experiment_id = await _holdout_experiment(client)
    response = await _post_csv(client, experiment_id, b"unit,value\nu1,1\nu2,2\nu1,3\n")
    assert response.status_code == 400
    problem = response.json()["invalid_params"][0]
    assert problem["name"] == "line 4, column unit"
    assert "line 2" in problem["reason"]


async def test_covariates_must_be_sent_for_every_outcome_of_a_call_or_none(client: Client) -> None:
    experiment_id = await _holdout_experiment(client)
    outcomes = [{"unit": "u1", "value": 1, "covariate": 2}, {"unit": "u2", "value": 1}]
    response = await _post_json(client, experiment_id, outcomes)
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "outcomes[1].covariate"


async def test_outcomes_are_refused_once_aggregate_observations_exist(client: Client) -> None:
    experiment_id = await _holdout_experiment(client)
    observation = {"channel": "meta", "arm": "holdout", "units": 10, "sum": 10.0, "sum_squares": 20.0}
    await client.post(f"/v1/experiments/{experiment_id}/observations", json={"observations": [observation]})
    response = await _post_json(client, experiment_id, [{"unit": "u1", "value": 1}])
    assert response.status_code == 409
    problem = response.json()
    assert problem["detail"] == (
        "This experiment's results come from aggregate observations; it cannot take unit-level outcomes too"
    )
    assert problem["invalid_params"] == [
        {"name": "outcomes", "reason": "the experiment already has aggregate observations"}
    ]


async def test_observations_are_refused_once_outcomes_exist(client: Client) -> None:
    experiment_id = await _holdout_experiment(client)
    await _post_json(client, experiment_id, [{"unit": "u1", "value": 1}])
    observation = {"channel": "meta", "arm": "holdout", "units": 10, "sum": 10.0, "sum_squares": 20.0}
    response = await client.post(f"/v1/experiments/{experiment_id}/observations", json={"observations": [observation]})
    assert response.status_code == 409
    problem = response.json()
    assert problem["detail"] == (
        "This experiment's results come from unit-level outcomes; it cannot take aggregate observations too"
    )
    assert problem["invalid_params"] == [
        {"name": "observations", "reason": "the experiment already has unit-level outcomes"}
    ]


@pytest.mark.parametrize(
    ("path", "body", "data"),
    [
        ("outcomes", {"outcomes": [{"unit": "u1", "value": 1}]}, "Unit-level outcomes"),
        (
            "observations",
            {"observations": [{"channel": "tv", "arm": "holdout", "units": 10, "conversions": 1}]},
            "Observations",
        ),
    ],
)
async def test_a_geo_experiment_refuses_holdout_data_and_says_it_reads_its_dataset(
    client: Client, path: str, body: dict[str, Any], data: str
) -> None:
    experiment_id = await create_geolift_experiment(client)
    response = await client.post(f"/v1/experiments/{experiment_id}/{path}", json=body)
    assert response.status_code == 409, response.text
    assert response.json()["detail"] == f"{data} are for holdout experiments; geo experiments read their dataset"


async def test_results_with_an_arm_lacking_outcomes_are_a_409_saying_which(client: Client) -> None:
    experiment_id = await _holdout_experiment(client)
    await _post_json(client, experiment_id, [{"unit": "never-assigned", "value": 1}])
    response = await _results(client, experiment_id)
    assert response.status_code == 409
    assert "meta/treatment" in response.json()["detail"]
    assert "1 outcomes belong to units never assigned" in response.json()["detail"]


async def test_outcomes_for_an_unknown_experiment_are_a_404(client: Client) -> None:
    response = await _post_json(client, "00000000-0000-4000-8000-000000000000", [{"unit": "u1", "value": 1}])
    assert response.status_code == 404


async def test_spend_for_an_unknown_channel_names_it(client: Client) -> None:
    experiment_id = await _holdout_experiment(client)
    spend = {"channels": [{"channel": "tv", "spend": 10.0}]}
    response = await client.put(f"/v1/experiments/{experiment_id}/spend", json=spend)
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "channels[0].channel"


async def test_a_line_without_end_is_refused_once_it_passes_the_line_limit(client: Client) -> None:
    experiment_id = await _holdout_experiment(client)
    response = await _post_csv(client, experiment_id, b"unit,value\nu1," + b"9" * 5_000_000)
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "line 2"


async def test_blank_lines_at_the_end_are_ignored_even_after_a_full_batch(client: Client) -> None:
    experiment_id = await _holdout_experiment(client)
    units = [f"u{i}" for i in range(50_000)]
    body = _csv(units, np.ones(len(units))) + b"\n\n\r\n"
    response = await _post_csv(client, experiment_id, body)
    assert response.status_code == 200, response.text
    assert response.json()["received"] == 50_000


async def test_a_blank_line_inside_the_file_names_its_line(client: Client) -> None:
    experiment_id = await _holdout_experiment(client)
    response = await _post_csv(client, experiment_id, b"unit,value\nu1,1\n\nu2,2\n")
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "line 3"


async def test_covariates_on_some_outcomes_only_leave_cuped_out_with_a_note(client: Client) -> None:
    experiment_id = await _holdout_experiment(client)
    holdout = await _assign(client, experiment_id, UNITS)
    values = np.arange(len(UNITS), dtype=float) % 11
    await _post_csv(client, experiment_id, _csv(UNITS, values, values + 1))
    holdout_unit = UNITS[int(np.flatnonzero(holdout)[0])]
    await _post_json(client, experiment_id, [{"unit": holdout_unit, "value": 3.0}])
    response = await _results(client, experiment_id)
    assert response.status_code == 200, response.text
    channel = response.json()["channels"][0]
    assert channel["cuped"] is None
    assert any("CUPED is not applied" in warning for warning in channel["warnings"])


async def test_concurrent_uploads_of_the_same_units_both_succeed(client: Client) -> None:
    experiment_id = await _holdout_experiment(client)
    units = [f"u{i}" for i in range(20_000)]
    forward = _csv(units, np.ones(len(units)))
    backward = _csv(units[::-1], np.full(len(units), 2.0))
    first, second = await asyncio.gather(
        _post_csv(client, experiment_id, forward), _post_csv(client, experiment_id, backward)
    )
    assert (first.status_code, second.status_code) == (200, 200)
    assert sorted([first.json()["inserted"], second.json()["inserted"]]) == [0, 20_000]


async def test_concurrent_first_sequential_looks_both_answer(client: Client) -> None:
    experiment_id = await _holdout_experiment(client)
    holdout = await _assign(client, experiment_id, UNITS)
    await _post_csv(client, experiment_id, _csv(UNITS, np.where(holdout, 1.0, 2.0) + np.arange(len(UNITS)) % 5))
    first, second = await asyncio.gather(
        _results(client, experiment_id, sequential="true"), _results(client, experiment_id, sequential="true")
    )
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["channels"][0]["lift"] == second.json()["channels"][0]["lift"]


async def test_an_arm_with_a_single_outcome_is_a_409_saying_why(client: Client) -> None:
    experiment_id = await _holdout_experiment(client)
    holdout = await _assign(client, experiment_id, UNITS[:200])
    treated = [u for u, h in zip(UNITS[:200], holdout.tolist(), strict=True) if not h]
    held_out = [u for u, h in zip(UNITS[:200], holdout.tolist(), strict=True) if h]
    outcomes = [{"unit": u, "value": 1.0 + i % 3} for i, u in enumerate([*treated, held_out[0]])]
    await _post_json(client, experiment_id, outcomes)
    response = await _results(client, experiment_id)
    assert response.status_code == 409
    assert response.json()["invalid_params"][0]["name"] == "outcomes[meta].holdout.units"


async def test_a_metric_far_from_zero_keeps_its_precision(client: Client) -> None:
    """Values of 1e9 + N(0, 1): raw sums of squares would cancel to nothing; statsmodels on the unit data
    is the reference (Chan, Golub & LeVeque 1983)."""
    experiment_id = await _holdout_experiment(client)
    holdout = await _assign(client, experiment_id, UNITS)
    rng = np.random.default_rng(17)
    values = np.round(1e9 + rng.normal(0.0, 1.0, len(UNITS)) + np.where(holdout, 0.0, 0.2), 6)
    covariates = np.round(5e8 + rng.normal(0.0, 1.0, len(UNITS)), 6)
    await _post_csv(client, experiment_id, _csv(UNITS, values, covariates))
    channel = (await _results(client, experiment_id)).json()["channels"][0]
    treated = DescrStatsW(values[~holdout])
    assert channel["treatment"]["std_error"] == pytest.approx(treated.std / np.sqrt(treated.nobs - 1), rel=1e-6)
    assert channel["treatment"]["mean"] == pytest.approx(values[~holdout].mean(), rel=1e-12)
    theta = np.cov(values, covariates)[0, 1] / covariates.var(ddof=1)
    assert channel["cuped"]["theta"] == pytest.approx(theta, rel=1e-6, abs=1e-9)
