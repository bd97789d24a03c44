"""Every chart the API returns, rendered as a person sees it (``?format=svg``) and checked for its marks.

Each chart is parsed by :mod:`tests.chart_marks`: every series its legend names has a visible mark painted as
its symbol (a line with one vertex per point of its data), bands are drawn, the axes carry their titles. The
geo result's chart once held its observed and counterfactual lines unstroked (issue 21): the JSON looked
right and the picture showed only the band.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import vl_convert
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.charts.images import render_chart
from testkit.jobs import finished_job
from testkit.panels import pretest_csv
from tests.api import test_multi_cell_geo as multi_cell
from tests.api.helpers import create_geolift_experiment, upload_dataset
from tests.api.test_chart_images import svg_text
from tests.api.test_matched_pairs import design_csv
from tests.api.test_multi_cell_market_selection import TWO_CELLS
from tests.api.test_trimmed_match_results import SMALL_PAIRS, SMALL_PERIODS, _small_panel, create_paired_experiment
from tests.chart_marks import ChartMarks, chart_marks

Client = AsyncTestClient[Litestar]
CSV = {"Content-Type": "text/csv"}
WAIT = {"Prefer": "wait=300"}  # answer within the request even on a busy machine
GEO_TEST_DAYS = 15  # create_geolift_experiment: 2021-04-01..15 after 90 pre-period days
GEO_DAYS = 90 + GEO_TEST_DAYS


async def svg_marks(response: Any) -> ChartMarks:
    return chart_marks(svg_text(response))


def curve_body(scale: str) -> dict[str, Any]:
    return {
        "metric": {"kind": "proportion", "baseline": 0.05},
        "mde": {"relative": 0.1},
        "sample_size_range": {"min": 1_000, "max": 1_000_000, "points": 7, "scale": scale},
    }


def point_gaps(marks: ChartMarks) -> np.ndarray:
    """Horizontal distances between consecutive points of the chart, in pixels."""
    xs = sorted(m.x for m in marks.drawn("symbol") if m.x is not None)
    return np.diff(xs)


def test_a_line_in_the_document_without_a_stroke_draws_no_series() -> None:
    # Issue 21's geo chart: the lines' colour field met a stacked view's colour domain that lacked its values.
    spec = {
        "vconcat": [
            {
                "data": {"values": [{"x": 1, "y": 1, "s": "observed"}, {"x": 2, "y": 2, "s": "observed"}]},
                "mark": "line",
                "encoding": {
                    "x": {"field": "x", "type": "quantitative"},
                    "y": {"field": "y", "type": "quantitative"},
                    "color": {"field": "s", "type": "nominal"},
                },
            },
            {
                "data": {"values": [{"x": 1, "v": "verdict"}]},
                "mark": "tick",
                "encoding": {
                    "x": {"field": "x", "type": "quantitative"},
                    "color": {"field": "v", "type": "nominal", "scale": {"domain": ["verdict"]}},
                },
            },
        ]
    }
    marks = chart_marks(vl_convert.vegalite_to_svg(spec))
    assert [m.kind for m in marks.marks].count("line") == 1  # it is in the SVG ...
    assert marks.drawn("line") == []  # ... but not painted
    assert list(marks.per_series()) == ["verdict"]  # the legend names only the other view's value


async def test_a_power_curve_over_linear_sizes_is_one_line_on_a_linear_axis(client: Client) -> None:
    marks = await svg_marks(await client.post("/v1/power/holdout/curve?format=svg", json=curve_body("linear")))
    (line,) = marks.drawn("line")
    assert line.points == 7 and len(marks.drawn("symbol")) == 7
    assert marks.axis_titles == ("Total sample size", "Power")
    gaps = point_gaps(marks)
    assert gaps == pytest.approx(np.full(6, gaps.mean()), abs=0.01)  # equally spaced sizes, equally spaced points


async def test_a_power_curve_over_log_spaced_sizes_is_drawn_on_a_log_axis(client: Client) -> None:
    marks = await svg_marks(await client.post("/v1/power/holdout/curve?format=svg", json=curve_body("log")))
    assert len(marks.drawn("line")) == 1 and len(marks.drawn("symbol")) == 7
    assert marks.axis_titles == ("Total sample size (log scale)", "Power")
    gaps = point_gaps(marks)
    # 1,000 to 1,000,000 in 7 geometric steps: equal gaps only on a log axis (rounded sizes move them < 0.5 px)
    assert gaps == pytest.approx(np.full(6, gaps.mean()), abs=0.5)


async def test_the_holdout_forest_plot_draws_each_channels_interval_and_estimate(client: Client) -> None:
    design = {
        "kind": "holdout",
        "name": "forest plot",
        "metric": {"kind": "proportion"},
        "channels": [{"name": "meta", "holdout_fraction": 0.1}, {"name": "search", "holdout_fraction": 0.05}],
    }
    experiment_id = (await client.post("/v1/experiments", json=design)).json()["id"]
    observations = [
        {"channel": "meta", "arm": "treatment", "units": 90_000, "conversions": 4_725},
        {"channel": "meta", "arm": "holdout", "units": 10_000, "conversions": 480},
        {"channel": "search", "arm": "treatment", "units": 95_000, "conversions": 4_840},
        {"channel": "search", "arm": "holdout", "units": 5_000, "conversions": 251},
    ]
    await client.post(f"/v1/experiments/{experiment_id}/observations", json={"observations": observations})
    results = (await client.get(f"/v1/experiments/{experiment_id}/results")).json()
    marks = await svg_marks(await client.get(f"/v1/experiments/{experiment_id}/results?format=svg"))
    decisions = [c["decision"]["action"] for c in results["channels"]]
    per_series = marks.per_series()
    assert sorted(per_series) == sorted(set(decisions))
    for decision in set(decisions):
        assert per_series[decision]["symbol"] == decisions.count(decision)
    assert len(marks.drawn("symbol")) == 2
    assert len(marks.drawn("rule")) == 3  # an interval per channel and the line at zero
    assert marks.axis_titles == ("Relative lift (95% CI)",)
    assert [label for label in marks.axis_labels if not label.endswith("%")] == ["meta", "search"]


async def test_a_geo_result_draws_observed_and_counterfactual_lines_its_band_and_the_test_start(
    client: Client,
) -> None:
    experiment_id = await create_geolift_experiment(client)
    marks = await svg_marks(await client.get(f"/v1/experiments/{experiment_id}/results?format=svg", headers=WAIT))
    per_series = marks.per_series()
    for series in ("observed", "counterfactual"):
        lines = [m for m in marks.drawn("line") if f"series: {series}" in m.label]
        assert per_series[series]["line"] == 1, series
        assert [m.points for m in lines] == [GEO_DAYS], series
    assert per_series["90% interval"] == {"area": 1}
    (band,) = marks.drawn("area")
    assert band.points == 2 * GEO_TEST_DAYS  # the band spans the test period, both edges
    assert "test starts" in marks.texts()
    assert {"Date", "KPI (treated markets' total)"} <= set(marks.axis_titles)


@pytest.mark.parametrize("method", ["augmented_synthetic_control", "tbr"])
async def test_every_geo_method_draws_both_lines_and_the_band(client: Client, method: str) -> None:
    experiment_id = await create_geolift_experiment(client)
    response = await client.get(
        f"/v1/experiments/{experiment_id}/results", params={"method": method, "format": "svg"}, headers=WAIT
    )
    marks = await svg_marks(response)
    per_series = marks.per_series()
    assert per_series["observed"]["line"] == 1 and per_series["counterfactual"]["line"] == 1
    assert per_series["90% interval"]["area"] == 1
    assert sorted(m.points for m in marks.drawn("line")) == [GEO_DAYS, GEO_DAYS]


async def test_a_trimmed_match_result_draws_both_groups_and_no_band(client: Client) -> None:
    experiment_id = await create_paired_experiment(client, _small_panel(with_spend=True), SMALL_PAIRS, SMALL_PERIODS)
    response = await client.get(
        f"/v1/experiments/{experiment_id}/results", params={"method": "trimmed_match", "format": "svg"}
    )
    marks = await svg_marks(response)
    per_series = marks.per_series()
    assert per_series["observed"]["line"] == 1 and per_series["counterfactual"]["line"] == 1
    assert not any(label.endswith("interval") for label in per_series)  # trimmed match has no band to draw
    assert marks.drawn("area") == []
    assert "test starts" in marks.texts()


async def test_a_geo_results_backtest_panel_draws_each_placebo_window_under_a_title_in_short_lines(
    client: Client,
) -> None:
    experiment_id = await create_geolift_experiment(client)
    path = f"/v1/experiments/{experiment_id}/results"
    result = (await client.get(path, headers=WAIT)).json()
    marks = await svg_marks(await client.get(f"{path}?format=svg", headers=WAIT))
    windows = result["backtest"]["placebo_windows"]
    per_series = marks.per_series()
    significant = sum(w["significant"] for w in windows)
    assert per_series["significant (false positive)"]["rule"] == significant
    assert per_series["not significant"]["rule"] == len(windows) - significant
    assert marks.titles[0] == "Backtest (synthetic_control)"
    assert marks.titles[1] == f"{significant} of {len(windows)} placebo windows significant at alpha 0.1"
    assert max(len(line) for line in marks.titles) <= 60  # fits the chart's width, not wider
    assert {"Placebo window (pre-period)", "Placebo lift"} <= set(marks.axis_titles)


async def test_a_multi_cell_result_draws_both_lines_of_each_cell(client: Client) -> None:
    created = await multi_cell.create(client)
    response = await client.get(
        f"/v1/experiments/{created['id']}/results", params={"method": "tbr", "format": "svg"}, headers=WAIT
    )
    marks = await svg_marks(response)
    per_series = marks.per_series()
    assert per_series["social"]["line"] == 2 and per_series["search"]["line"] == 2
    assert per_series["observed"]["line"] == 2 and per_series["counterfactual"]["line"] == 2
    for cell in ("social", "search"):
        for series in ("observed", "counterfactual"):
            (line,) = [m for m in marks.drawn("line") if f"Cell: {cell}; series: {series}" in m.label]
            assert line.points == GEO_DAYS
    assert "test starts" in marks.texts()
    assert marks.axis_titles == ("Date", "KPI (cell's treated markets' total)")


async def test_each_cell_of_a_multi_cell_result_has_its_own_chart_with_both_lines_and_its_band(client: Client) -> None:
    created = await multi_cell.create(client)
    result = await multi_cell.results(client, created["id"], "augmented_synthetic_control")
    for cell in result["cells"]:
        marks = chart_marks(render_chart(cell["results"]["chart"], "svg"))
        per_series = marks.per_series()
        assert per_series["observed"]["line"] == 1 and per_series["counterfactual"]["line"] == 1, cell["name"]
        assert per_series["90% interval"]["area"] == 1, cell["name"]


async def test_market_selection_lists_its_designs_in_rank_order_each_with_its_curve(
    client: Client, worker: None
) -> None:
    upload_response = await client.post("/v1/geo/datasets", content=pretest_csv(), headers=CSV)
    body = {
        "dataset_id": upload_response.json()["id"],
        "treatment_sizes": [2],
        "durations": [10],
        "effect_sizes": [0.0, 0.05, 0.1],
        "search_budget": 40,
        "top": 11,
    }
    started = await client.post("/v1/geo/market-selection", json=body)
    job = await finished_job(client, started.headers["location"])
    assert job["status"] == "succeeded", job
    candidates = job["result"]["candidates"]
    assert len(candidates) >= 10  # enough for #10 to sort before #2 as text
    marks = await svg_marks(await client.get(f"{started.headers['location']}?format=svg"))
    assert [entry.label.split(" ")[0] for entry in marks.legend] == [f"#{c['rank']}" for c in candidates]
    for label, drawn in marks.per_series().items():
        assert drawn["line"] == 1 and drawn["symbol"] == 3, label
    assert marks.axis_titles == ("Effect size (relative lift)", "Power")


async def test_a_multi_cell_market_selection_lists_each_cells_designs_in_rank_order(
    client: Client, worker: None
) -> None:
    upload_response = await client.post("/v1/geo/datasets", content=pretest_csv(), headers=CSV)
    started = await client.post(
        "/v1/geo/market-selection", json={"dataset_id": upload_response.json()["id"], **TWO_CELLS}
    )
    job = await finished_job(client, started.headers["location"])
    assert job["status"] == "succeeded", job
    expected = [f"cell {cell['cell']} #{c['rank']}" for cell in job["result"]["cells"] for c in cell["candidates"]]
    marks = await svg_marks(await client.get(f"{started.headers['location']}?format=svg"))
    assert [" ".join(entry.label.split(" ")[:3]) for entry in marks.legend] == expected
    assert all(drawn["line"] == 1 for drawn in marks.per_series().values())


async def test_geo_power_lists_durations_in_order_each_with_its_curve(client: Client) -> None:
    upload_response = await client.post("/v1/geo/datasets", content=pretest_csv(), headers=CSV)
    body = {
        "dataset_id": upload_response.json()["id"],
        "treatment_markets": ["chicago", "portland"],
        "durations": [5, 10],
        "effect_sizes": [0.0, 0.1],
    }
    marks = await svg_marks(await client.post("/v1/geo/power?format=svg", json=body, headers=WAIT))
    assert [entry.label for entry in marks.legend] == ["5 days", "10 days"]
    assert all(drawn["line"] == 1 for drawn in marks.per_series().values())


async def test_a_matched_pair_design_draws_its_precision_against_pairs_kept_with_the_recommendation(
    client: Client, worker: None
) -> None:
    dataset_id = await upload_dataset(client, design_csv(geos=24, since="2020-10-01"))
    body = {
        "dataset_id": dataset_id,
        "budgets": [20000, 40000],
        "pair_counts": [12, 10, 8],
        "simulations": 30,
        "seed": 3,
        "target_iroas": 3.0,
    }
    started = await client.post("/v1/geo/matched-pairs", json=body)
    job = await finished_job(client, started.headers["location"])
    assert job["status"] == "succeeded", job
    marks = await svg_marks(await client.get(f"{started.headers['location']}?format=svg"))
    per_series = marks.per_series()
    assert list(per_series) == ["budget 20,000", "budget 40,000"]
    for label, drawn in per_series.items():
        assert drawn["line"] == 1 and drawn["symbol"] == 3, label
    assert f"recommended: {job['result']['recommended']} pairs" in marks.texts()
    rings = [m for m in marks.drawn("symbol") if m.stroke == "black" and m.fill in (None, "transparent", "none")]
    assert len(rings) == 2  # the recommended design's point on each budget's line, circled
    assert "target iROAS 3" in marks.texts()
    assert marks.axis_titles == ("Pairs kept", "Minimum detectable iROAS")
