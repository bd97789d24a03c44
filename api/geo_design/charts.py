"""Vega-Lite power curves of geo designs (one line per duration or per candidate)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from api.geo_design.schemas import PowerCurvePoint

VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"


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
