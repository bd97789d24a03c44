"""Vega-Lite charts of geo results: the treated markets' observed total against the counterfactual, with the
counterfactual's band and the test's start (GeoLift's standard plot), for one test or for each cell of a
multi-cell test."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, Protocol

from api.charts import VEGA_LITE_SCHEMA


class SeriesPoint(Protocol):
    """Treated markets' total on one date and its counterfactual, with the counterfactual's band when it has one."""

    @property
    def date(self) -> date: ...
    @property
    def observed(self) -> float: ...
    @property
    def counterfactual(self) -> float: ...
    @property
    def ci_low(self) -> float | None: ...
    @property
    def ci_high(self) -> float | None: ...


OBSERVED, COUNTERFACTUAL = "observed", "counterfactual"
# GeoLift's standard plot: observed (treatment) solid and dark, the counterfactual dashed with its band.
SERIES_COLOURS = {OBSERVED: "#222222", COUNTERFACTUAL: "#e4572e"}
SERIES_DASHES = {OBSERVED: [1, 0], COUNTERFACTUAL: [6, 3]}


def observed_vs_counterfactual_chart(
    series: Sequence[SeriesPoint], test_start: date, kpi_title: str, confidence_level: float
) -> dict[str, Any]:
    """Observed and counterfactual totals as two lines, the counterfactual's band, the test's start marked.

    The lines are drawn by ``stroke`` over a fixed domain and the band by ``fill``: neither scale can be
    merged with another view's ``color`` (the backtest stacked under it), whose domain left the lines
    without a colour. The y axis follows the data (GeoLift's plot does not start at zero either).
    """
    values: list[dict[str, Any]] = []
    for point in series:
        day = point.date.isoformat()
        values.append({"date": day, "series": OBSERVED, "value": point.observed})
        values.append(
            {
                "date": day,
                "series": COUNTERFACTUAL,
                "value": point.counterfactual,
                "ci_low": point.ci_low,
                "ci_high": point.ci_high,
            }
        )
    x = {"field": "date", "type": "temporal", "title": "Date"}
    lines = {
        "mark": {"type": "line", "strokeWidth": 2},
        "encoding": {
            "x": x,
            "y": {"field": "value", "type": "quantitative", "title": kpi_title, "scale": {"zero": False}},
            "stroke": {
                "field": "series",
                "type": "nominal",
                "title": None,
                "scale": {"domain": list(SERIES_COLOURS), "range": list(SERIES_COLOURS.values())},
            },
            "strokeDash": {
                "field": "series",
                "type": "nominal",
                "title": None,
                "scale": {"domain": list(SERIES_DASHES), "range": list(SERIES_DASHES.values())},
            },
        },
    }
    has_band = any(p.ci_low is not None and p.ci_high is not None for p in series)
    return {
        "$schema": VEGA_LITE_SCHEMA,
        "description": "Treated markets: observed vs counterfactual total"
        + (", with the counterfactual's band." if has_band else "."),
        "width": 640,
        "height": 300,
        "data": {"values": values},
        "layer": ([_band(x, kpi_title, f"{confidence_level:.0%} interval")] if has_band else [])
        + [lines, test_start_layer(test_start, x)],
    }


def test_start_layer(test_start: date, x: dict[str, Any]) -> dict[str, Any]:
    """A dashed rule at the test's first day, labelled."""
    return {
        "data": {"values": [{"date": test_start.isoformat(), "label": "test starts"}]},
        "layer": [
            {"mark": {"type": "rule", "strokeDash": [2, 2], "color": "gray"}, "encoding": {"x": x}},
            {
                # Left of the rule: tests start late in the series, where a label to the right is cut off.
                "mark": {"type": "text", "align": "right", "baseline": "top", "dx": -4, "y": 4, "color": "gray"},
                "encoding": {"x": x, "text": {"field": "label"}},
            },
        ],
    }


def _band(x: dict[str, Any], kpi_title: str, band: str) -> dict[str, Any]:
    return {
        "transform": [{"filter": "datum.ci_low != null && datum.ci_high != null"}],
        "mark": {"type": "area", "opacity": 0.2},
        "encoding": {
            "x": x,
            "y": {"field": "ci_low", "type": "quantitative", "title": kpi_title, "scale": {"zero": False}},
            "y2": {"field": "ci_high"},
            "fill": {
                "datum": band,
                "type": "nominal",
                "scale": {"domain": [band], "range": [SERIES_COLOURS[COUNTERFACTUAL]]},
                "legend": {"title": None, "symbolType": "square", "symbolOpacity": 0.3},
            },
        },
    }


def cells_chart(cells: Sequence[tuple[str, Sequence[SeriesPoint]]], test_start: date) -> dict[str, Any]:
    """Each named cell's observed (solid) and counterfactual (dashed) total, one colour per cell, the test's start."""
    values = [
        {"cell": name, "date": p.date.isoformat(), "series": series, "value": value}
        for name, points in cells
        for p in points
        for series, value in ((OBSERVED, p.observed), (COUNTERFACTUAL, p.counterfactual))
    ]
    x = {"field": "date", "type": "temporal", "title": "Date"}
    return {
        "$schema": VEGA_LITE_SCHEMA,
        "description": "Each cell's treated markets: observed vs counterfactual total.",
        "width": 640,
        "height": 300,
        "layer": [
            {
                "data": {"values": values},
                "mark": {"type": "line", "strokeWidth": 2},
                "encoding": {
                    "x": x,
                    "y": {
                        "field": "value",
                        "type": "quantitative",
                        "title": "KPI (cell's treated markets' total)",
                        "scale": {"zero": False},
                    },
                    "color": {
                        "field": "cell",
                        "type": "nominal",
                        "title": "Cell",
                        "sort": [name for name, _ in cells],
                    },
                    "strokeDash": {
                        "field": "series",
                        "type": "nominal",
                        "title": None,
                        "scale": {"domain": list(SERIES_DASHES), "range": list(SERIES_DASHES.values())},
                    },
                },
            },
            test_start_layer(test_start, x),
        ],
    }
