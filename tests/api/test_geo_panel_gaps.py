"""Geo results on panels with missing market-dates (issue 13, "Panels as advertisers have them").

References: Google matched_markets' TBR on its own example data (``salesandcost.csv``, 75 missing
geo-days), whose R-package figures ``matched_markets/tests/test_tbr_iroas.py`` hard-codes
(incremental response 147337.122, iROAS 2.946742 for an incremental cost of 50,000) and
``tests/test_tbr.py`` (slope 0.9997001); and, for the synthetic-control policies, the same analysis on
a panel prepared independently (the market and date left out by hand, or the gaps filled with
pandas' time interpolation).
"""

from __future__ import annotations

import csv

import pandas as pd
import pytest

from tests.api.helpers import Client, create_experiment, create_walkthrough_experiment, holdout_design, results
from tests.conftest import DATA_DIR

CSV = {"Content-Type": "text/csv"}
MM = DATA_DIR / "matched_markets"


def _geolift_rows() -> list[dict[str, str]]:
    with (DATA_DIR / "geolift" / "GeoLift_Test.csv").open() as fh:
        return list(csv.DictReader(fh))


def _csv(rows: list[dict[str, str]]) -> str:
    return "location,Y,date\n" + "".join(f"{r['location']},{r['Y']},{r['date']}\n" for r in rows)


# A donor (atlanta) without three dates, one in each period, and a treated market (chicago) without a
# pre-period date.
DONOR_GAPS = {("atlanta", "2021-02-03"), ("atlanta", "2021-03-20"), ("atlanta", "2021-04-07")}
TREATED_PRE_GAP = ("chicago", "2021-02-10")


def _without(cells: set[tuple[str, str]], rows: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
    return [r for r in (rows or _geolift_rows()) if (r["location"], r["date"]) not in cells]


async def _matched_markets_experiment(client: Client) -> str:
    with (MM / "geoassignment.csv").open(newline="") as fh:
        treated = sorted(row["geo"] for row in csv.DictReader(fh) if row["geo.group"] == "2")
    return await create_walkthrough_experiment(
        client,
        (MM / "salesandcost.csv").read_text(),
        treatment_markets=treated,
        pre_period={"start": "2015-01-05", "end": "2015-02-15"},
        test_period={"start": "2015-02-16", "end": "2015-03-15"},
        spend=50_000.0,
    )


async def test_tbr_on_matched_markets_example_with_missing_zero_gives_its_published_figures(client: Client) -> None:
    experiment_id = await _matched_markets_experiment(client)
    result = await results(client, experiment_id, method="tbr", missing="zero")
    assert result["incremental"]["estimate"] == pytest.approx(147337.122, abs=1e-3)
    assert result["fit"]["slope"] == pytest.approx(0.9997001, abs=5e-8)
    assert result["iroas"]["estimate"] == pytest.approx(2.946742, abs=1e-6)
    assert result["fit"]["n_pre_periods"] == 42 and result["fit"]["n_test_periods"] == 28
    assert any("filled with 0" in w for w in result["warnings"])


async def test_tbr_interval_on_matched_markets_example_contains_its_published_estimate(client: Client) -> None:
    # Issue 23: the all-days fit answered 147,337 with an 80% interval of [125,758, 144,553].
    experiment_id = await _matched_markets_experiment(client)
    for level in (0.8, 0.9):
        result = await results(client, experiment_id, method="tbr", missing="zero", confidence_level=level)
        incremental = result["incremental"]
        assert result["ci_status"] == "interval"
        assert incremental["ci_low"] < incremental["estimate"] < incremental["ci_high"]
        assert result["iroas"]["ci_low"] < result["iroas"]["estimate"] < result["iroas"]["ci_high"]


async def test_a_treated_market_gap_in_the_test_period_is_409_naming_market_and_dates(client: Client) -> None:
    experiment_id = await _matched_markets_experiment(client)
    for missing in ("drop_market", "interpolate", None):
        params = {"method": "tbr"} | ({} if missing is None else {"missing": missing})
        response = await client.get(f"/v1/experiments/{experiment_id}/results", params=params)
        assert response.status_code == 409, response.text
        problem = response.json()
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "'79' on 2015-02-22" in problem["detail"]
        named = {p["name"] for p in problem["invalid_params"]}
        assert named == {"treatment_markets"}
        reasons = " ".join(p["reason"] for p in problem["invalid_params"])
        assert "'96' has no value on 2015-03-15" in reasons


async def test_drop_market_is_the_analysis_without_the_gappy_donor_and_the_treated_gap_date(client: Client) -> None:
    gappy = await create_walkthrough_experiment(client, _csv(_without(DONOR_GAPS | {TREATED_PRE_GAP})))
    by_hand_rows = [r for r in _geolift_rows() if r["location"] != "atlanta" and r["date"] != TREATED_PRE_GAP[1]]
    by_hand = await create_walkthrough_experiment(client, _csv(by_hand_rows))
    for method in ("tbr", "synthetic_control"):
        result = await results(client, gappy, method=method)
        expected = await results(client, by_hand, method=method)
        assert result["incremental"] == pytest.approx(expected["incremental"], rel=1e-9)
        assert result["p_value"] == pytest.approx(expected["p_value"], rel=1e-9)
        assert "atlanta" not in result["weights"] and result["weights"].keys() == expected["weights"].keys()
        assert result["fit"]["n_pre_periods"] == 89
        warnings = " ".join(result["warnings"])
        assert "left out of the controls: atlanta" in warnings and TREATED_PRE_GAP[1] in warnings


async def test_interpolate_is_the_analysis_of_the_panel_filled_by_time_interpolation(client: Client) -> None:
    gappy = await create_walkthrough_experiment(client, _csv(_without(DONOR_GAPS | {TREATED_PRE_GAP})))
    frame = pd.DataFrame(_geolift_rows())
    wide = frame.assign(Y=frame["Y"].astype(float), date=pd.to_datetime(frame["date"])).pivot(
        index="date", columns="location", values="Y"
    )
    for geo, day in DONOR_GAPS | {TREATED_PRE_GAP}:
        wide.loc[pd.Timestamp(day), geo] = float("nan")
    wide = wide.interpolate(method="time")
    filled = [
        {"location": geo, "Y": repr(float(wide.loc[day, geo])), "date": day.date().isoformat()}
        for geo in wide.columns
        for day in wide.index
    ]
    by_pandas = await create_walkthrough_experiment(client, _csv(filled))
    result = await results(client, gappy, method="tbr", missing="interpolate")
    expected = await results(client, by_pandas, method="tbr")
    assert result["incremental"] == pytest.approx(expected["incremental"], rel=1e-9)
    assert len(result["weights"]) == 38
    assert any("4 missing market-date(s) filled by linear interpolation" in w for w in result["warnings"])


async def test_zero_counts_a_treated_test_day_gap_as_zero_and_says_so(client: Client) -> None:
    gap = ("chicago", "2021-04-05")
    experiment_id = await create_walkthrough_experiment(client, _csv(_without({gap})))
    refused = await client.get(f"/v1/experiments/{experiment_id}/results", params={"method": "synthetic_control"})
    assert refused.status_code == 409 and "'chicago' on 2021-04-05" in refused.json()["detail"]
    zero = [r if (r["location"], r["date"]) != gap else {**r, "Y": "0"} for r in _geolift_rows()]
    expected = await results(client, await create_walkthrough_experiment(client, _csv(zero)), method="tbr")
    result = await results(client, experiment_id, method="tbr", missing="zero")
    assert result["incremental"] == pytest.approx(expected["incremental"], rel=1e-9)
    assert any("1 of them are treated market dates inside the test period" in w for w in result["warnings"])


async def test_a_complete_panel_reports_no_missing_data_warning(client: Client) -> None:
    experiment_id = await create_walkthrough_experiment(client, _csv(_geolift_rows()))
    result = await results(client, experiment_id, method="tbr", missing="interpolate")
    assert not any(w.startswith("missing=") for w in result["warnings"])


async def test_an_unknown_missing_policy_is_400_naming_missing(client: Client) -> None:
    experiment_id = await create_walkthrough_experiment(client, _csv(_geolift_rows()))
    response = await client.get(f"/v1/experiments/{experiment_id}/results", params={"missing": "mean"})
    assert response.status_code == 400
    assert "missing" in response.text


async def test_missing_on_a_holdout_experiment_is_400(client: Client) -> None:
    experiment_id = await create_experiment(client, holdout_design("h"))
    response = await client.get(f"/v1/experiments/{experiment_id}/results", params={"missing": "zero"})
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "missing"
