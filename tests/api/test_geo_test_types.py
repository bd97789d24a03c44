"""Geo test types and timing (issue 13): `test_type` with the spend change per market, the ROI kind each
result reports, and the lagged effect over a `cooldown_period` estimated apart from the test.

References: the same estimator run as an ordinary experiment whose test period is the cool-down
(same pre-period), and, for trimmed match, :func:`stats.geo.trimmed_match.trimmed_match` on the pairs'
cool-down KPI deltas against their test-period spend deltas computed here from Google's
post-analysis file (its colab uses a cool-down to 2020-12-16).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from typing import Any

import numpy as np
import pytest

from stats.geo.trimmed_match import trimmed_match
from testkit.panels import as_geolift_csv, geolift_design, geolift_rows
from tests.api.helpers import Client, create_experiment, results, unspent_geolift_design, upload_dataset
from tests.api.test_trimmed_match_results import POST_ANALYSIS, _post_analysis

CSV = {"Content-Type": "text/csv"}
TEST = {"start": "2021-04-01", "end": "2021-04-08"}
COOLDOWN = {"start": "2021-04-09", "end": "2021-04-15"}


async def _geolift_dataset(client: Client) -> str:
    """GeoLift's walkthrough panel uploaded in its own column names (``location,Y,date``)."""
    return await upload_dataset(client, as_geolift_csv(geolift_rows()))


async def test_a_holdback_divides_by_the_negative_spend_change_and_reports_average_roi(client: Client) -> None:
    dataset_id = await _geolift_dataset(client)
    change = {"chicago": -4_000.0, "portland": -6_000.0}
    holdback = await create_experiment(
        client, unspent_geolift_design(dataset_id, test_type="holdback", spend_change=change)
    )
    result = await results(client, holdback, method="tbr")
    incremental = result["incremental"]
    assert result["iroas"]["estimate"] == pytest.approx(incremental["estimate"] / -10_000.0)
    assert result["iroas"]["ci_low"] == pytest.approx(incremental["ci_high"] / -10_000.0)
    assert result["iroas"]["ci_high"] == pytest.approx(incremental["ci_low"] / -10_000.0)
    assert result["test_type"] == "holdback" and result["roi_kind"] == "average"


async def test_a_go_dark_synthetic_control_iroas_is_the_incremental_over_the_negative_cost(client: Client) -> None:
    dataset_id = await _geolift_dataset(client)
    change = {"chicago": -5_000.0, "portland": -5_000.0}
    go_dark = await create_experiment(
        client, unspent_geolift_design(dataset_id, test_type="go-dark", spend_change=change)
    )
    result = await results(client, go_dark, method="synthetic_control")
    assert result["iroas"]["estimate"] == pytest.approx(result["incremental"]["estimate"] / -10_000.0)
    assert result["iroas"]["ci_low"] <= result["iroas"]["estimate"] <= result["iroas"]["ci_high"]
    assert result["test_type"] == "go-dark" and result["roi_kind"] == "average"


async def test_a_heavy_up_reports_marginal_roi_over_the_added_spend(client: Client) -> None:
    dataset_id = await _geolift_dataset(client)
    change = {"chicago": 3_000.0, "portland": 2_000.0}
    heavy_up = await create_experiment(
        client, unspent_geolift_design(dataset_id, test_type="heavy-up", spend_change=change)
    )
    result = await results(client, heavy_up, method="tbr")
    assert result["iroas"]["estimate"] == pytest.approx(result["incremental"]["estimate"] / 5_000.0)
    assert result["roi_kind"] == "marginal" and result["test_type"] == "heavy-up"


async def test_an_experiment_without_test_type_reports_average_roi_of_its_spend(client: Client) -> None:
    plain = await create_experiment(client, geolift_design(await _geolift_dataset(client)))
    result = await results(client, plain, method="tbr")
    assert result["test_type"] is None and result["roi_kind"] == "average"
    assert result["iroas"]["estimate"] == pytest.approx(result["incremental"]["estimate"] / 10_000.0)
    assert result["cooldown"] is None


@pytest.mark.parametrize("method", ["tbr", "synthetic_control"])
async def test_the_cooldown_effect_is_the_estimate_with_the_cooldown_as_test_period(
    client: Client, method: str
) -> None:
    dataset_id = await _geolift_dataset(client)
    with_cooldown = await create_experiment(
        client, geolift_design(dataset_id, test_period=TEST, cooldown_period=COOLDOWN)
    )
    test_only = await create_experiment(client, geolift_design(dataset_id, test_period=TEST))
    cooldown_as_test = await create_experiment(client, geolift_design(dataset_id, test_period=COOLDOWN))
    result = await results(client, with_cooldown, method=method)
    expected_test = await results(client, test_only, method=method)
    expected_lag = await results(client, cooldown_as_test, method=method)
    assert result["incremental"] == pytest.approx(expected_test["incremental"], rel=1e-9)
    cooldown = result["cooldown"]
    assert (cooldown["start"], cooldown["end"], cooldown["n_periods"]) == ("2021-04-09", "2021-04-15", 7)
    assert cooldown["incremental"] == pytest.approx(expected_lag["incremental"], rel=1e-9)
    assert cooldown["att"] == pytest.approx(expected_lag["att"], rel=1e-9)
    assert cooldown["p_value"] == pytest.approx(expected_lag["p_value"], rel=1e-9)
    assert cooldown["iroas"] == pytest.approx(expected_lag["iroas"], rel=1e-9)
    assert cooldown["total_incremental"] == pytest.approx(
        result["incremental"]["estimate"] + cooldown["incremental"]["estimate"]
    )
    assert len(result["series"]) == 90 + 8


async def test_trimmed_match_cooldown_divides_the_lagged_response_by_the_test_spend(client: Client) -> None:
    panel_csv, pairs = _post_analysis()
    dataset_id = await upload_dataset(client, panel_csv)
    body = unspent_geolift_design(
        dataset_id,
        name="Paired search test",
        treatment_markets=[p[0] for p in pairs],
        pairs=pairs,
        pre_period={"start": "2020-01-01", "end": "2020-11-03"},
        test_period={"start": "2020-11-04", "end": "2020-12-01"},
        cooldown_period={"start": "2020-12-02", "end": "2020-12-16"},
    )
    result = await results(client, await create_experiment(client, body), method="trimmed_match", confidence_level=0.8)
    kpi: dict[str, float] = defaultdict(float)
    cost: dict[str, float] = defaultdict(float)
    with POST_ANALYSIS.open(newline="") as handle:
        for row in csv.DictReader(handle):
            day, geo = row["date"][:10], f"g{row['geo']}"
            if "2020-12-02" <= day <= "2020-12-16":
                kpi[geo] += float(row["response"])
            if "2020-11-04" <= day <= "2020-12-01":
                cost[geo] += float(row["cost"])
    y = np.array([kpi[t] - kpi[c] for t, c in pairs])
    x = np.array([cost[t] - cost[c] for t, c in pairs])
    expected = trimmed_match(y, x, 0.8)
    lagged = result["cooldown"]
    assert lagged["iroas"]["estimate"] == pytest.approx(expected.estimate, rel=1e-9)
    assert lagged["iroas"]["ci_low"] == pytest.approx(expected.ci_low, rel=1e-9)
    assert lagged["iroas"]["ci_high"] == pytest.approx(expected.ci_high, rel=1e-9)
    assert lagged["incremental"]["estimate"] == pytest.approx(expected.incremental_response.estimate, rel=1e-9)
    assert result["roi_kind"] == "average"


async def test_a_cooldown_beyond_the_dataset_is_409(client: Client) -> None:
    late = await create_experiment(
        client,
        unspent_geolift_design(
            await _geolift_dataset(client),
            test_period=TEST,
            cooldown_period={"start": "2021-04-09", "end": "2021-04-30"},
        ),
    )
    response = await client.get(f"/v1/experiments/{late}/results", params={"method": "tbr"})
    assert response.status_code == 409
    assert "cool-down ends 2021-04-30" in response.json()["detail"]


BAD_DESIGNS: list[tuple[dict[str, Any], str, str]] = [
    (
        {"test_period": TEST, "cooldown_period": {"start": "2021-04-08", "end": "2021-04-15"}},
        "cooldown_period.start",
        "overlaps",
    ),
    (
        {"test_period": TEST, "cooldown_period": {"start": "2021-04-12", "end": "2021-04-10"}},
        "cooldown_period.end",
        "before",
    ),
    ({"test_type": "holdback"}, "spend_change", "required"),
    ({"spend_change": {"chicago": -1.0, "portland": -1.0}}, "test_type", "required"),
    ({"test_type": "holdback", "spend_change": {"chicago": -1.0}}, "spend_change", "'portland'"),
    (
        {"test_type": "holdback", "spend_change": {"chicago": -1.0, "portland": -1.0, "boston": -1.0}},
        "spend_change.boston",
        "not a treatment market",
    ),
    (
        {"test_type": "go-dark", "spend_change": {"chicago": -1.0, "portland": 2.0}},
        "spend_change.portland",
        "not be positive",
    ),
    (
        {"test_type": "heavy-up", "spend_change": {"chicago": -1.0, "portland": 2.0}},
        "spend_change.chicago",
        "not be negative",
    ),
    ({"test_type": "heavy-up", "spend_change": {"chicago": 0.0, "portland": 0.0}}, "spend_change", "every change is 0"),
    ({"test_type": "heavy-up", "spend_change": {"chicago": 1.0, "portland": 2.0}, "spend": 3.0}, "spend", "either"),
]


@pytest.mark.parametrize(("overrides", "field", "reason"), BAD_DESIGNS)
async def test_bad_test_type_or_timing_is_400_naming_the_field(
    client: Client, overrides: dict[str, Any], field: str, reason: str
) -> None:
    response = await client.post(
        "/v1/experiments", json=unspent_geolift_design(await _geolift_dataset(client), **overrides)
    )
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["invalid_params"][0]["name"] == field
    assert reason in problem["invalid_params"][0]["reason"]


async def test_an_unknown_test_type_is_400(client: Client) -> None:
    body = unspent_geolift_design(
        await _geolift_dataset(client),
        test_type="blackout",
        spend_change={"chicago": -1.0, "portland": -1.0},
    )
    response = await client.post("/v1/experiments", json=body)
    assert response.status_code == 400
    assert "test_type" in response.text


async def test_moving_the_test_onto_the_cooldown_by_patch_is_400(client: Client) -> None:
    experiment_id = await create_experiment(
        client,
        unspent_geolift_design(await _geolift_dataset(client), test_period=TEST, cooldown_period=COOLDOWN),
    )
    shown = (await client.get(f"/v1/experiments/{experiment_id}")).json()
    assert shown["cooldown_period"] == COOLDOWN and shown["test_type"] is None
    response = await client.patch(
        f"/v1/experiments/{experiment_id}", json={"test_period": {"start": "2021-04-01", "end": "2021-04-10"}}
    )
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "cooldown_period.start"


async def test_patch_sets_a_test_type_and_its_spend_change(client: Client) -> None:
    experiment_id = await create_experiment(client, unspent_geolift_design(await _geolift_dataset(client)))
    change = {"chicago": 1_000.0, "portland": 500.0}
    patched = await client.patch(
        f"/v1/experiments/{experiment_id}", json={"test_type": "heavy-up", "spend_change": change}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["test_type"] == "heavy-up" and patched.json()["spend_change"] == change


async def test_a_test_inside_a_running_experiments_cooldown_collides(client: Client) -> None:
    dataset_id = await _geolift_dataset(client)
    first = await create_experiment(
        client, unspent_geolift_design(dataset_id, test_period=TEST, cooldown_period=COOLDOWN)
    )
    started = await client.patch(f"/v1/experiments/{first}", json={"status": "running"})
    assert started.status_code == 200, started.text
    response = await client.post(
        "/v1/experiments", json=unspent_geolift_design(dataset_id, name="Radio in Chicago", test_period=COOLDOWN)
    )
    assert response.status_code == 409, response.text
    assert first in response.json()["detail"]
