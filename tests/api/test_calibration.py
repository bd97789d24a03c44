"""MMM calibration exports, each field checked against the library's documented input.

Sources of the documented inputs (read in the libraries' own code):
- Robyn: ``R/R/checks.R`` ``check_calibration`` (the required columns ``channel, liftStartDate, liftEndDate,
  liftAbs, spend, confidence, metric, calibration_scope``) and ``demo/demo.R`` (``liftAbs`` the incremental
  response over the test, ``spend`` the spend in it, "if frequentist experiment, you may use 1 - pvalue" for
  ``confidence``, ``metric`` the ``dep_var``, ``calibration_scope`` "immediate" for lift tests).
- Meridian 2.1.0: ``meridian/model/calibration/prior_builder.py``
  ``CalibrationBuilder.with_incrementality_experiment_result(channel_name, *, point_estimates,
  standard_errors, experiment_kpi_types, experiment_total_spends, experiment_start_dates,
  experiment_end_dates)``; ``base.ExperimentResult`` refuses ``standard_error <= 0`` and
  ``point_estimate + 1.96 * standard_error < 0``.
- PyMC-Marketing 0.19.2: ``MMM.add_lift_test_measurements`` (``df_lift_test`` columns ``channel, x, delta_x,
  delta_y, sigma`` and one column per model dimension such as ``geo``); ``mmm/lift_test.py``
  ``assert_monotonic`` refuses ``delta_x * delta_y < 0``.
The lift itself is checked against statsmodels (holdout) and the service's own ``GET …/results`` (geo, whose
GeoLift reproduction ``tests/api/test_geo_results.py`` checks).
"""

from __future__ import annotations

import asyncio
import csv
import io
import math
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from scipy import special
from statsmodels.stats import proportion as sm_proportion

from api.calibration.measurements import roi_kind
from tests.api import test_multi_cell_geo as multi_cell
from tests.api.helpers import create_geolift_experiment
from tests.api.test_trimmed_match_results import _post_analysis as trimmed_match_post_analysis
from tests.api.test_trimmed_match_results import create_paired_experiment
from tests.conftest import DATA_DIR

Client = AsyncTestClient[Litestar]
ROBYN_COLUMNS = [
    "channel",
    "liftStartDate",
    "liftEndDate",
    "liftAbs",
    "spend",
    "confidence",
    "metric",
    "calibration_scope",
]
MERIDIAN_ARGUMENTS = {
    "channel_name",
    "point_estimates",
    "standard_errors",
    "experiment_kpi_types",
    "experiment_total_spends",
    "experiment_start_dates",
    "experiment_end_dates",
}
PYMC_COLUMNS = ["channel", "x", "delta_x", "delta_y", "sigma"]
TREATMENT = {"channel": "meta", "arm": "treatment", "units": 90000, "conversions": 4725, "spend": 25000}
HOLDOUT = {"channel": "meta", "arm": "holdout", "units": 10000, "conversions": 480}
VALUE = 40.0
Z95 = float(special.ndtri(0.975))


async def holdout_experiment(
    client: Client, connection: asyncpg.Connection, observations: list[dict[str, Any]] | None = None
) -> str:
    """A stopped holdout test of one channel that ran 2026-03-01..2026-03-14, with its observations."""
    body = {
        "kind": "holdout",
        "name": "meta holdout",
        "metric": {"kind": "proportion"},
        "channels": [{"name": "meta", "holdout_fraction": 0.1}],
    }
    experiment_id: str = (await client.post("/v1/experiments", json=body)).json()["id"]
    if observations is None:
        observations = [{**TREATMENT, "value_per_conversion": VALUE}, HOLDOUT]
    stored = await client.post(f"/v1/experiments/{experiment_id}/observations", json={"observations": observations})
    assert stored.status_code == 200, stored.text
    await connection.execute(
        "UPDATE experiments SET status = 'stopped', started_at = '2026-03-01T09:00Z', actual_start = '2026-03-01', "
        "stopped_at = '2026-03-14T18:00Z', actual_end = '2026-03-14' WHERE id = $1",
        experiment_id,
    )
    return experiment_id


def wald(treated: int, n_treated: int, held: int, n_held: int) -> tuple[float, float, float]:
    """statsmodels' Wald test of p_T − p_H: (difference, its standard error, two-sided p-value)."""
    test = sm_proportion.test_proportions_2indep(treated, n_treated, held, n_held, method="wald", compare="diff")
    difference = treated / n_treated - held / n_held
    return difference, difference / test.statistic, test.pvalue


async def export(client: Client, experiment_id: str, fmt: str, **params: Any) -> Any:
    response = await client.get(f"/v1/experiments/{experiment_id}/calibration", params={"format": fmt, **params})
    assert response.status_code == 200, response.text
    return response.json()


# --- Average or marginal ROI -----------------------------------------------------------------------


def test_a_holdout_test_measures_average_roi() -> None:
    assert roi_kind({"kind": "holdout", "design": {"metric": {"kind": "proportion"}}}) == "average"


def test_a_geo_test_without_test_type_measures_average_roi() -> None:
    assert roi_kind({"kind": "geo", "design": {"channel": "tv"}}) == "average"


@pytest.mark.parametrize(
    ("test_type", "kind"), [("holdback", "average"), ("go-dark", "average"), ("heavy-up", "marginal")]
)
def test_a_geo_test_type_decides_average_or_marginal_roi(test_type: str, kind: str) -> None:
    assert roi_kind({"kind": "geo", "design": {"channel": "tv", "test_type": test_type}}) == kind


# --- Holdout experiments -----------------------------------------------------------------------------


async def test_holdout_robyn_rows_are_robyns_calibration_input(client: Client, connection: asyncpg.Connection) -> None:
    """Robyn ``check_calibration`` columns; liftAbs = incremental conversions × value (revenue dep_var)."""
    experiment_id = await holdout_experiment(client, connection)
    body = await export(client, experiment_id, "robyn")
    difference, _, p_value = wald(4725, 90000, 480, 10000)
    assert body["kind"] == "robyn"  # the export's tag, as results are tagged holdout or geo
    assert body["context"]["roi_kind"] == "average" and body["context"]["kpi_type"] == "revenue"
    (row,) = body["calibration_input"]
    assert list(row) == ROBYN_COLUMNS
    assert row["channel"] == "meta"
    assert row["liftStartDate"] == "2026-03-01" and row["liftEndDate"] == "2026-03-14"
    assert row["liftAbs"] == pytest.approx(difference * 90000 * VALUE, rel=1e-9)
    assert row["spend"] == 25000
    assert row["confidence"] == pytest.approx(1.0 - p_value, abs=1e-10)
    assert row["metric"] == "revenue"
    assert row["calibration_scope"] == "immediate"


async def test_holdout_robyn_csv_has_robyns_columns_and_the_kpi_name(
    client: Client, connection: asyncpg.Connection
) -> None:
    """Robyn reads ``calibration_input`` as a data.frame: the CSV header is its column list."""
    experiment_id = await holdout_experiment(client, connection)
    response = await client.get(
        f"/v1/experiments/{experiment_id}/calibration",
        params={"format": "robyn", "kpi_name": "sales"},
        headers={"Accept": "text/csv"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == ROBYN_COLUMNS
    json_row = (await export(client, experiment_id, "robyn", kpi_name="sales"))["calibration_input"][0]
    assert rows[0]["metric"] == "sales" == json_row["metric"]
    assert float(rows[0]["liftAbs"]) == json_row["liftAbs"] and rows[0]["liftEndDate"] == "2026-03-14"


async def test_holdout_meridian_arguments_are_roi_and_its_standard_error(
    client: Client, connection: asyncpg.Connection
) -> None:
    """``with_incrementality_experiment_result``: ROI = incremental revenue / spend, SE from the Wald SE."""
    experiment_id = await holdout_experiment(client, connection)
    body = await export(client, experiment_id, "meridian")
    difference, se, _ = wald(4725, 90000, 480, 10000)
    (result,) = body["experiment_results"]
    assert set(result) == MERIDIAN_ARGUMENTS
    assert result["channel_name"] == "meta"
    assert result["point_estimates"] == [pytest.approx(difference * 90000 * VALUE / 25000, rel=1e-9)]
    assert result["standard_errors"] == [pytest.approx(se * 90000 * VALUE / 25000, rel=1e-9)]
    assert result["experiment_kpi_types"] == ["revenue"]
    assert result["experiment_total_spends"] == [25000]
    assert result["experiment_start_dates"] == ["2026-03-01"]
    assert result["experiment_end_dates"] == ["2026-03-14"]


async def test_holdout_meridian_without_value_gives_incremental_conversions_per_spend(
    client: Client, connection: asyncpg.Connection
) -> None:
    """A non-revenue experiment's point estimate is IKPC (incremental KPI per cost), Meridian's docstring."""
    experiment_id = await holdout_experiment(client, connection, [TREATMENT, HOLDOUT])
    body = await export(client, experiment_id, "meridian")
    difference, se, _ = wald(4725, 90000, 480, 10000)
    (result,) = body["experiment_results"]
    assert result["experiment_kpi_types"] == ["non-revenue"]
    assert result["point_estimates"] == [pytest.approx(difference * 90000 / 25000, rel=1e-9)]
    assert result["standard_errors"] == [pytest.approx(se * 90000 / 25000, rel=1e-9)]
    assert body["context"]["kpi_type"] == "non-revenue"


async def test_a_holdout_test_with_a_channel_without_value_exports_conversions_for_every_channel(
    client: Client, connection: asyncpg.Connection
) -> None:
    """An MMM has one KPI (Robyn: ``metric`` must equal ``dep_var`` on every row): conversions unless every
    channel's lift can be valued."""
    body = {
        "kind": "holdout",
        "name": "two channels",
        "metric": {"kind": "proportion"},
        "channels": [{"name": "meta", "holdout_fraction": 0.1}, {"name": "search", "holdout_fraction": 0.05}],
    }
    experiment_id = (await client.post("/v1/experiments", json=body)).json()["id"]
    search = [
        {"channel": "search", "arm": "treatment", "units": 95000, "conversions": 4840, "spend": 12000},
        {"channel": "search", "arm": "holdout", "units": 5000, "conversions": 251},
    ]
    observations = [{**TREATMENT, "value_per_conversion": VALUE}, HOLDOUT, *search]
    await client.post(f"/v1/experiments/{experiment_id}/observations", json={"observations": observations})
    await connection.execute(
        "UPDATE experiments SET started_at = '2026-03-01T09:00Z', actual_start = '2026-03-01' WHERE id = $1",
        experiment_id,
    )
    exported = await export(client, experiment_id, "robyn")
    meta, search_row = exported["calibration_input"]
    assert exported["context"]["kpi_type"] == "non-revenue"
    assert {meta["metric"], search_row["metric"]} == {"conversions"}
    assert meta["liftAbs"] == pytest.approx(wald(4725, 90000, 480, 10000)[0] * 90000, rel=1e-9)
    assert search_row["liftAbs"] == pytest.approx(wald(4840, 95000, 251, 5000)[0] * 95000, rel=1e-9)
    assert "still running" in exported["context"]["warnings"][0]
    asked = await client.get(
        f"/v1/experiments/{experiment_id}/calibration", params={"format": "robyn", "kpi_type": "revenue"}
    )
    assert asked.status_code == 409
    assert asked.json()["invalid_params"] == [{"name": "channels[search].value_per_conversion", "reason": "missing"}]


async def test_unit_level_outcomes_export_the_spend_put_for_the_channel(
    client: Client, connection: asyncpg.Connection
) -> None:
    """Outcomes joined to assignments in SQL, spend from ``PUT …/spend``: Robyn's ``spend`` is that spend and
    ``liftAbs`` the results' incremental conversions."""
    body = {
        "kind": "holdout",
        "name": "unit level",
        "metric": {"kind": "proportion"},
        "channels": [{"name": "meta", "holdout_fraction": 0.5}],
    }
    experiment_id = (await client.post("/v1/experiments", json=body)).json()["id"]
    path = f"/v1/experiments/{experiment_id}"
    await client.patch(path, json={"status": "running"})
    units = [f"user-{i}" for i in range(2000)]
    await client.post(f"{path}/assignments", json={"units": units})
    outcomes = [{"unit": unit, "value": int(i % 9 == 0 or i % 13 == 0)} for i, unit in enumerate(units)]
    assert (await client.post(f"{path}/outcomes", json={"outcomes": outcomes})).status_code == 200
    spent = await client.put(f"{path}/spend", json={"channels": [{"channel": "meta", "spend": 1500}]})
    assert spent.status_code == 200, spent.text
    channel = (await client.get(f"{path}/results")).json()["channels"][0]
    assert channel["spend"] == 1500
    (row,) = (await export(client, experiment_id, "robyn"))["calibration_input"]
    assert row["spend"] == 1500 and row["metric"] == "conversions"
    assert row["liftAbs"] == pytest.approx(channel["incremental"]["estimate"], rel=1e-12)
    assert row["confidence"] == pytest.approx(1 - channel["p_value"], abs=1e-12)


async def test_holdout_pymc_marketing_rows_are_per_period_changes_from_zero_spend(
    client: Client, connection: asyncpg.Connection
) -> None:
    """``df_lift_test``: x = 0 (average ROI: spend against none), per week of a 14-day test (2 periods)."""
    experiment_id = await holdout_experiment(client, connection)
    body = await export(client, experiment_id, "pymc-marketing")
    difference, se, _ = wald(4725, 90000, 480, 10000)
    assert body["period_days"] == 7
    (row,) = body["df_lift_test"]
    assert list(row) == PYMC_COLUMNS
    assert row["channel"] == "meta" and row["x"] == 0.0
    assert row["delta_x"] == pytest.approx(25000 / 2)
    assert row["delta_y"] == pytest.approx(difference * 90000 * VALUE / 2, rel=1e-9)
    assert row["sigma"] == pytest.approx(se * 90000 * VALUE / 2, rel=1e-9)
    assert row["delta_x"] * row["delta_y"] >= 0


async def test_holdout_pymc_marketing_csv_has_the_df_lift_test_columns(
    client: Client, connection: asyncpg.Connection
) -> None:
    experiment_id = await holdout_experiment(client, connection)
    response = await client.get(
        f"/v1/experiments/{experiment_id}/calibration",
        params={"format": "pymc-marketing", "media": "csv", "period_days": 1},
    )
    assert response.status_code == 200, response.text
    (row,) = list(csv.DictReader(io.StringIO(response.text)))
    assert list(row) == PYMC_COLUMNS
    assert float(row["delta_x"]) == pytest.approx(25000 / 14)


async def test_meridian_refuses_a_significantly_negative_roi_with_the_reason(
    client: Client, connection: asyncpg.Connection
) -> None:
    """Meridian's ``ExperimentResult``: point + 1.96·se < 0 is refused; so is it here, before Meridian sees it."""
    held = {**HOLDOUT, "conversions": 600}
    experiment_id = await holdout_experiment(client, connection, [{**TREATMENT, "value_per_conversion": VALUE}, held])
    difference, se, _ = wald(4725, 90000, 600, 10000)
    assert difference + Z95 * se < 0
    response = await client.get(f"/v1/experiments/{experiment_id}/calibration", params={"format": "meridian"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert "statistically significant negative lift" in problem["detail"]
    assert problem["invalid_params"][0]["name"] == "experiment_results[meta].point_estimates"


async def test_pymc_marketing_refuses_a_lift_against_the_spend_with_the_reason(
    client: Client, connection: asyncpg.Connection
) -> None:
    held = {**HOLDOUT, "conversions": 600}
    experiment_id = await holdout_experiment(client, connection, [{**TREATMENT, "value_per_conversion": VALUE}, held])
    response = await client.get(f"/v1/experiments/{experiment_id}/calibration", params={"format": "pymc-marketing"})
    assert response.status_code == 422
    problem = response.json()
    assert "delta_x · delta_y < 0" in problem["detail"]
    assert problem["invalid_params"][0]["name"] == "df_lift_test[meta].delta_y"


async def test_an_experiment_without_results_yet_is_409_saying_what_is_missing(client: Client) -> None:
    body = {
        "kind": "holdout",
        "name": "no data",
        "metric": {"kind": "proportion"},
        "channels": [{"name": "meta", "holdout_fraction": 0.1}],
    }
    experiment_id = (await client.post("/v1/experiments", json=body)).json()["id"]
    await client.patch(f"/v1/experiments/{experiment_id}", json={"status": "running"})
    response = await client.get(f"/v1/experiments/{experiment_id}/calibration", params={"format": "robyn"})
    assert response.status_code == 409
    assert "No observations yet for meta/treatment" in response.json()["detail"]


async def test_a_channel_without_spend_is_409_naming_the_spend(client: Client, connection: asyncpg.Connection) -> None:
    treated = {key: value for key, value in TREATMENT.items() if key != "spend"}
    experiment_id = await holdout_experiment(client, connection, [treated, HOLDOUT])
    response = await client.get(f"/v1/experiments/{experiment_id}/calibration", params={"format": "meridian"})
    assert response.status_code == 409
    assert response.json()["invalid_params"] == [{"name": "channels[meta].spend", "reason": "missing"}]


async def test_a_holdout_test_never_started_is_409_for_want_of_dates(client: Client) -> None:
    body = {
        "kind": "holdout",
        "name": "draft",
        "metric": {"kind": "proportion"},
        "channels": [{"name": "meta", "holdout_fraction": 0.1}],
    }
    experiment_id = (await client.post("/v1/experiments", json=body)).json()["id"]
    observations = [{**TREATMENT, "value_per_conversion": VALUE}, HOLDOUT]
    await client.post(f"/v1/experiments/{experiment_id}/observations", json={"observations": observations})
    response = await client.get(f"/v1/experiments/{experiment_id}/calibration", params={"format": "robyn"})
    assert response.status_code == 409
    assert response.json()["invalid_params"] == [
        {"name": "actual_period", "reason": "missing: the test never ran and has no test_period"}
    ]


async def imported_holdout_test(client: Client, **dates: Any) -> str:
    """A holdout test registered after it ran: its dates stated at creation, its observations posted, still draft."""
    body = {
        "kind": "holdout",
        "name": "imported meta holdout",
        "metric": {"kind": "proportion"},
        "channels": [{"name": "meta", "holdout_fraction": 0.1}],
        **dates,
    }
    created = await client.post("/v1/experiments", json=body)
    assert created.status_code == 201, created.text
    experiment_id: str = created.json()["id"]
    observations = [{**TREATMENT, "value_per_conversion": VALUE}, HOLDOUT]
    stored = await client.post(f"/v1/experiments/{experiment_id}/observations", json={"observations": observations})
    assert stored.status_code == 200, stored.text
    return experiment_id


async def test_a_holdout_test_registered_after_it_ran_exports_to_meridian_with_its_stated_dates(
    client: Client,
) -> None:
    """It never moved through `running` here (that would date it today, a one-day test Meridian refuses)."""
    period = {"start": "2026-02-02", "end": "2026-02-15"}
    experiment_id = await imported_holdout_test(client, actual_period=period)
    body = await export(client, experiment_id, "meridian")
    (result,) = body["experiment_results"]
    assert result["experiment_start_dates"] == ["2026-02-02"]
    assert result["experiment_end_dates"] == ["2026-02-15"]
    assert body["context"]["test_dates"] == {**period, "days": 14, "basis": "actual"}


async def test_robyn_rows_of_a_registered_test_carry_its_stated_dates(client: Client) -> None:
    experiment_id = await imported_holdout_test(client, actual_period={"start": "2026-02-02", "end": "2026-02-15"})
    (row,) = (await export(client, experiment_id, "robyn"))["calibration_input"]
    assert (row["liftStartDate"], row["liftEndDate"]) == ("2026-02-02", "2026-02-15")


async def test_pymc_marketing_context_states_the_dates_its_periods_are_counted_over(client: Client) -> None:
    """21 stated days at period_days=7 are 3 periods: delta_x is a third of the spend."""
    experiment_id = await imported_holdout_test(client, actual_period={"start": "2026-01-05", "end": "2026-01-25"})
    body = await export(client, experiment_id, "pymc-marketing")
    assert body["context"]["test_dates"] == {"start": "2026-01-05", "end": "2026-01-25", "days": 21, "basis": "actual"}
    assert body["df_lift_test"][0]["delta_x"] == pytest.approx(25000 / 3)


async def test_a_test_with_only_a_plan_exports_the_planned_dates_with_a_warning(client: Client) -> None:
    experiment_id = await imported_holdout_test(client, test_period={"start": "2026-03-02", "end": "2026-03-29"})
    body = await export(client, experiment_id, "robyn")
    (row,) = body["calibration_input"]
    assert (row["liftStartDate"], row["liftEndDate"]) == ("2026-03-02", "2026-03-29")
    assert body["context"]["test_dates"]["basis"] == "planned"
    assert any("planned test_period" in warning for warning in body["context"]["warnings"])


async def test_stated_actual_dates_win_over_the_plan_in_exports(client: Client) -> None:
    experiment_id = await imported_holdout_test(
        client,
        test_period={"start": "2026-03-02", "end": "2026-03-29"},
        actual_period={"start": "2026-03-09", "end": "2026-04-05"},
    )
    (row,) = (await export(client, experiment_id, "robyn"))["calibration_input"]
    assert (row["liftStartDate"], row["liftEndDate"]) == ("2026-03-09", "2026-04-05")


async def test_meridian_as_csv_and_a_geo_method_on_a_holdout_test_are_400(
    client: Client, connection: asyncpg.Connection
) -> None:
    experiment_id = await holdout_experiment(client, connection)
    path = f"/v1/experiments/{experiment_id}/calibration"
    as_csv = await client.get(path, params={"format": "meridian", "media": "csv"})
    assert as_csv.status_code == 400 and as_csv.json()["invalid_params"][0]["name"] == "media"
    with_method = await client.get(path, params={"format": "robyn", "method": "tbr"})
    assert with_method.status_code == 400 and with_method.json()["invalid_params"][0]["name"] == "method"


async def test_an_export_is_in_the_audit_trail_with_the_rows_handed_out(
    client: Client, connection: asyncpg.Connection
) -> None:
    experiment_id = await holdout_experiment(client, connection)
    body = await export(client, experiment_id, "pymc-marketing")
    events = (await client.get(f"/v1/experiments/{experiment_id}/events")).json()["items"]
    event = events[-1]
    assert event["action"] == "calibration_exported"
    assert event["details"] == {
        "format": "pymc-marketing",
        "roi_kind": "average",
        "kpi_type": "revenue",
        "rows": body["df_lift_test"],
    }


async def test_a_slow_export_becomes_a_job_whose_result_is_the_export(
    client: Client, connection: asyncpg.Connection, worker: None
) -> None:
    """``Prefer: respond-async``: 202 and a job (as the results endpoint); the worker's answer is the export."""
    experiment_id = await holdout_experiment(client, connection)
    path = f"/v1/experiments/{experiment_id}/calibration"
    queued = await client.get(path, params={"format": "meridian"}, headers={"Prefer": "respond-async"})
    assert queued.status_code == 202, queued.text
    job: dict[str, Any] = {}
    for _ in range(1200):
        job = (await client.get(queued.headers["location"])).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            break
        await asyncio.sleep(0.05)
    assert job["status"] == "succeeded", job
    assert job["result"] == await export(client, experiment_id, "meridian")


# --- Geo experiments (GeoLift's walkthrough: chicago + portland, 2021-04-01..15, spend 10,000) --------


async def geo_results(client: Client, experiment_id: str) -> Any:
    response = await client.get(f"/v1/experiments/{experiment_id}/results")
    assert response.status_code == 200, response.text
    return response.json()


async def test_geo_robyn_row_is_the_incremental_kpi_over_the_test_period(client: Client) -> None:
    """Robyn ``calibration_input`` from the geo result: liftAbs = incremental KPI, confidence = 1 − p."""
    experiment_id = await create_geolift_experiment(client)
    results = await geo_results(client, experiment_id)
    body = await export(client, experiment_id, "robyn")
    assert body["context"]["method"] == "synthetic_control" and body["context"]["roi_kind"] == "average"
    (row,) = body["calibration_input"]
    assert list(row) == ROBYN_COLUMNS
    assert row["channel"] == "tv"
    assert row["liftStartDate"] == "2021-04-01" and row["liftEndDate"] == "2021-04-15"
    assert row["liftAbs"] == pytest.approx(results["incremental"]["estimate"], rel=1e-12)
    assert row["liftAbs"] == pytest.approx(4667.0, rel=0.005)  # GeoLift's vignette
    assert row["spend"] == 10000
    assert row["confidence"] == pytest.approx(1.0 - results["p_value"], abs=1e-12)
    assert row["metric"] == "revenue" and row["calibration_scope"] == "immediate"


async def test_geo_meridian_arguments_are_the_iroas_and_its_standard_error(client: Client) -> None:
    """ROI = iROAS of the result; SE = iROAS interval width / (2·z_0.95) at the geo default level 0.9."""
    experiment_id = await create_geolift_experiment(client)
    results = await geo_results(client, experiment_id)
    (result,) = (await export(client, experiment_id, "meridian"))["experiment_results"]
    iroas = results["iroas"]
    z = float(special.ndtri(0.95))
    assert set(result) == MERIDIAN_ARGUMENTS
    assert result["channel_name"] == "tv"
    assert result["point_estimates"] == [pytest.approx(iroas["estimate"], rel=1e-12)]
    assert result["standard_errors"] == [pytest.approx((iroas["ci_high"] - iroas["ci_low"]) / (2 * z), rel=1e-9)]
    assert result["experiment_kpi_types"] == ["revenue"]
    assert result["experiment_total_spends"] == [10000]
    assert result["experiment_start_dates"] == ["2021-04-01"] and result["experiment_end_dates"] == ["2021-04-15"]


async def test_geo_pymc_marketing_gives_each_treated_market_an_equal_share(client: Client) -> None:
    """One ``df_lift_test`` row per treated market (the ``geo`` dimension); the two rows together weigh as
    the pooled measurement: shares of x, delta_x, delta_y and sigma/√2."""
    experiment_id = await create_geolift_experiment(client)
    results = await geo_results(client, experiment_id)
    body = await export(client, experiment_id, "pymc-marketing")
    incremental = results["incremental"]
    se = (incremental["ci_high"] - incremental["ci_low"]) / (2 * float(special.ndtri(0.95)))
    periods = 15 / 7
    rows = body["df_lift_test"]
    assert [row["geo"] for row in rows] == ["chicago", "portland"]
    for row in rows:
        assert list(row) == [*PYMC_COLUMNS, "geo"]
        assert row["channel"] == "tv" and row["x"] == 0.0
        assert row["delta_x"] == pytest.approx(10000 / periods / 2)
        assert row["delta_y"] == pytest.approx(incremental["estimate"] / periods / 2, rel=1e-12)
        assert row["sigma"] == pytest.approx(se / periods / math.sqrt(2), rel=1e-9)
    pooled_precision = sum(1 / row["sigma"] ** 2 for row in rows)
    assert pooled_precision == pytest.approx(1 / (se / periods / 2) ** 2)  # = the precision of one share


async def test_a_geo_export_reads_the_lift_of_the_method_asked_for(client: Client) -> None:
    experiment_id = await create_geolift_experiment(client)
    tbr = (await client.get(f"/v1/experiments/{experiment_id}/results", params={"method": "tbr"})).json()
    body = await export(client, experiment_id, "robyn", method="tbr")
    assert body["context"]["method"] == "tbr"
    assert body["calibration_input"][0]["liftAbs"] == pytest.approx(tbr["incremental"]["estimate"], rel=1e-12)
    assert body["calibration_input"][0]["confidence"] == pytest.approx(1 - tbr["p_value"], abs=1e-12)


async def test_a_trimmed_match_export_spends_the_pairs_incremental_cost(client: Client) -> None:
    """Google trimmed_match's post-analysis colab (``tests/api/test_trimmed_match_results.py``): its iROAS
    is incremental KPI per unit of the pairs' spend difference, so Meridian's ROI is that iROAS and the
    spend that difference, with no ``spend`` on the experiment."""
    panel_csv, pairs = trimmed_match_post_analysis()
    experiment_id = await create_paired_experiment(client, panel_csv, pairs)
    params: dict[str, str | float] = {"method": "trimmed_match", "confidence_level": 0.8}
    results = (await client.get(f"/v1/experiments/{experiment_id}/results", params=params)).json()
    (result,) = (await export(client, experiment_id, "meridian", **params))["experiment_results"]
    iroas = results["iroas"]
    assert result["experiment_total_spends"] == [pytest.approx(results["fit"]["incremental_cost"], rel=1e-12)]
    assert result["point_estimates"] == [pytest.approx(iroas["estimate"], rel=1e-9)]
    z = float(special.ndtri(0.9))
    assert result["standard_errors"] == [pytest.approx((iroas["ci_high"] - iroas["ci_low"]) / (2 * z), rel=1e-9)]


async def test_a_geo_experiment_without_spend_is_409(client: Client) -> None:
    experiment_id = await create_geolift_experiment(client, spend=None)
    response = await client.get(f"/v1/experiments/{experiment_id}/calibration", params={"format": "meridian"})
    assert response.status_code == 409
    assert response.json()["invalid_params"] == [{"name": "spend", "reason": "missing"}]


def geolift_csv_with_spend(daily_spend: float) -> str:
    """GeoLift's walkthrough panel with a constant spend per market and day."""
    with (DATA_DIR / "geolift" / "GeoLift_Test.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    return "geo,kpi,date,spend\n" + "".join(f"{r['location']},{r['Y']},{r['date']},{daily_spend}\n" for r in rows)


async def test_a_heavy_up_test_starts_pymc_marketing_rows_at_the_usual_spend(
    client: Client, connection: asyncpg.Connection
) -> None:
    """Marginal ROI: x is the treated market's spend per period as usual (its pre-period daily average)."""
    upload = await client.post(
        "/v1/geo/datasets", content=geolift_csv_with_spend(300.0), headers={"Content-Type": "text/csv"}
    )
    experiment_id = await create_geolift_experiment(client, dataset_id=upload.json()["id"])
    await connection.execute(
        'UPDATE experiments SET design = design || \'{"test_type": "heavy-up"}\' WHERE id = $1', experiment_id
    )
    body = await export(client, experiment_id, "pymc-marketing")
    assert body["context"]["roi_kind"] == "marginal"
    for row in body["df_lift_test"]:
        assert row["x"] == pytest.approx(300.0 * 7)
        assert row["delta_x"] == pytest.approx(10000 / (15 / 7) / 2)


async def test_a_heavy_up_test_on_a_panel_without_spend_is_409(client: Client, connection: asyncpg.Connection) -> None:
    experiment_id = await create_geolift_experiment(client)
    await connection.execute(
        'UPDATE experiments SET design = design || \'{"test_type": "heavy-up"}\' WHERE id = $1', experiment_id
    )
    response = await client.get(f"/v1/experiments/{experiment_id}/calibration", params={"format": "pymc-marketing"})
    assert response.status_code == 409
    assert "heavy-up" in response.json()["detail"]


# --- Multi-cell geo experiments: one measurement per cell --------------------------------------------


async def test_a_multi_cell_export_has_one_row_per_cell_with_the_cells_channel(client: Client) -> None:
    """GeoLift's multi-cell example: cell social (channel meta, spend 20,000) and cell search (the
    experiment's channel, media, spend 10,000); each row is its cell's lift, spend and markets."""
    created = await multi_cell.create(client)
    cells = (await multi_cell.results(client, created["id"], "tbr"))["cells"]
    body = await export(client, created["id"], "robyn", method="tbr")
    rows = body["calibration_input"]
    assert [(row["channel"], row["spend"]) for row in rows] == [("meta", 20_000), ("media", 10_000)]
    for row, cell in zip(rows, cells, strict=True):
        assert row["liftAbs"] == pytest.approx(cell["results"]["incremental"]["estimate"], rel=1e-12)
        assert row["confidence"] == pytest.approx(1 - cell["results"]["p_value"], abs=1e-12)
    pymc = (await export(client, created["id"], "pymc-marketing", method="tbr"))["df_lift_test"]
    assert [(row["channel"], row["geo"]) for row in pymc] == [
        ("meta", "chicago"),
        ("meta", "cincinnati"),
        ("media", "honolulu"),
        ("media", "indianapolis"),
    ]


async def test_a_multi_cell_export_with_a_cell_without_spend_is_409_naming_the_cell(client: Client) -> None:
    cells = [
        {"name": "social", "treatment_markets": multi_cell.SOCIAL, "spend": 20_000.0},
        {"name": "search", "treatment_markets": multi_cell.SEARCH},
    ]
    created = await multi_cell.create(client, cells=cells)
    response = await client.get(f"/v1/experiments/{created['id']}/calibration", params={"format": "robyn"})
    assert response.status_code == 409, response.text
    assert response.json()["invalid_params"] == [{"name": "cells[1].spend", "reason": "missing"}]
