"""Vega-Lite power curves: geo designs' power against effect size (one line per duration or per candidate), and a
holdout test's power or MDE against sample size."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol

from api.charts import VEGA_LITE_SCHEMA


class PowerCurvePoint(Protocol):
    """Power at one effect size."""

    @property
    def effect_size(self) -> float: ...
    @property
    def power(self) -> float: ...


def power_curve_chart(
    curves: Sequence[tuple[str, Sequence[PowerCurvePoint]]], power_target: float, series_title: str
) -> dict[str, Any]:
    """Power against effect size, one line per labelled curve, with a rule at the power target.

    The legend lists the curves in the order given (ranks, durations), not sorted as text (#1, #10, #2).
    """
    values = [
        {"series": label, "effect_size": point.effect_size, "power": point.power}
        for label, points in curves
        for point in points
    ]
    x = {
        "field": "effect_size",
        "type": "quantitative",
        "title": "Effect size (relative lift)",
        "axis": {"format": "%"},
    }
    return {
        "$schema": VEGA_LITE_SCHEMA,
        "description": "Simulated power of the geo test against the injected effect size.",
        "width": 640,
        "height": 300,
        "layer": [
            {
                "data": {"values": values},
                "mark": {"type": "line", "point": True},
                "encoding": {
                    "x": x,
                    "y": {"field": "power", "type": "quantitative", "title": "Power", "scale": {"domain": [0, 1]}},
                    "color": {
                        "field": "series",
                        "type": "nominal",
                        "title": series_title,
                        "sort": [label for label, _ in curves],
                        # More curves than 10 colours: twenty, so that no two designs share one.
                        **({"scale": {"scheme": "tableau20"}} if len(curves) > 10 else {}),
                    },
                },
            },
            {
                "data": {"values": [{"power": power_target}]},
                "mark": {"type": "rule", "strokeDash": [4, 4], "color": "gray"},
                "encoding": {"y": {"field": "power", "type": "quantitative"}},
            },
        ],
    }


def sample_size_curve_chart(
    curve: Literal["power", "mde"],
    points: Sequence[tuple[int, float]],
    x_scale: Literal["linear", "log"],
) -> dict[str, Any]:
    """A holdout test's ``curve`` (power, or the relative MDE) against total sample size, ``points`` as
    ``(sample_size, power or relative MDE)``, on the axis the grid was spaced on (log-spaced sizes on a log axis)."""
    y_field, y_title = ("power", "Power") if curve == "power" else ("mde_relative", "Relative MDE")
    return {
        "$schema": VEGA_LITE_SCHEMA,
        "description": f"{y_title} against total sample size",
        "data": {"values": [{"sample_size": size, y_field: value} for size, value in points]},
        "mark": {"type": "line", "point": True},
        "encoding": {
            "x": {
                "field": "sample_size",
                "type": "quantitative",
                "title": "Total sample size" + (" (log scale)" if x_scale == "log" else ""),
                "scale": {"type": x_scale},
                # A log axis labels 1-2-5 steps: short labels (30k, 50k) keep them apart on a phone.
                "axis": {"labelOverlap": "greedy", "format": "~s"} if x_scale == "log" else {},
            },
            "y": {
                "field": y_field,
                "type": "quantitative",
                "title": y_title,
                "axis": {"format": ".0%" if curve == "power" else ".1%"},
            },
        },
    }
