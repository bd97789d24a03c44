"""The Vega-Lite chart of a monitored geo test (``sequential=true``): each daily look against its boundary.

x is the look's date; y, on a log scale, is the look's fixed-horizon p-value (a line with a point per look)
and the level O'Brien-Fleming-type spending holds that look to (the boundary, a dashed step line centred on
each look). A look crosses when its p-value falls to or under its boundary; the first crossing, where the
test may stop, is ringed and labelled. Early boundaries are tiny (1e-60 on day 1 of a month-long test) and
0 past the planned end: a log scale cannot draw them, so every value is drawn at least at
:data:`LOG_FLOOR`, and the axis title says so (the tooltip keeps the exact values).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, Protocol

from api.charts import VEGA_LITE_SCHEMA

LOG_FLOOR = 1e-6
LOG_FLOOR_TEXT = "1e-6"
P_VALUE, BOUNDARY = "fixed-horizon p-value", "boundary (nominal level)"
SERIES_COLOURS = {P_VALUE: "#1f77b4", BOUNDARY: "#e4572e"}
SERIES_DASHES = {P_VALUE: [1, 0], BOUNDARY: [6, 3]}
TITLE = "Daily looks against the boundary"


class GeoLook(Protocol):
    """One daily look: its test day and date, its fixed-horizon p-value and the boundary it is held to."""

    @property
    def day(self) -> int: ...
    @property
    def date(self) -> date: ...
    @property
    def p_value_fixed_horizon(self) -> float: ...
    @property
    def nominal_level(self) -> float: ...


def monitoring_chart(looks: Sequence[GeoLook], decision_day: int | None) -> dict[str, Any]:
    """The looks' fixed-horizon p-values and boundaries by date (log scale), the first crossing marked."""
    values: list[dict[str, Any]] = []
    for look in looks:
        day = look.date.isoformat()
        for series, value in ((P_VALUE, look.p_value_fixed_horizon), (BOUNDARY, look.nominal_level)):
            values.append(
                {"date": day, "day": look.day, "series": series, "value": value, "drawn": max(value, LOG_FLOOR)}
            )
    x = {
        "field": "date",
        "type": "temporal",
        "title": "Look date",
        "axis": {"format": "%b %d", "tickCount": {"interval": "day"}},
    }
    y = {
        "field": "drawn",
        "type": "quantitative",
        "title": f"p-value and boundary (log scale; values below {LOG_FLOOR_TEXT} drawn at {LOG_FLOOR_TEXT})",
        "scale": {"type": "log", "domainMin": LOG_FLOOR, "domainMax": 1},
        "axis": {"format": ".0e"},
    }
    layers: list[dict[str, Any]] = [
        _series_layer(P_VALUE, {"type": "line", "strokeWidth": 2, "point": True}, x, y),
        _series_layer(BOUNDARY, {"type": "line", "strokeWidth": 2, "interpolate": "step"}, x, y),
    ]
    crossing = next((look for look in looks if look.day == decision_day), None)
    if crossing is not None:
        layers.append(_crossing_layer(crossing, x, y))
    return {
        "$schema": VEGA_LITE_SCHEMA,
        "title": {
            "text": TITLE,
            "subtitle": "A look may stop the test when its p-value is at or under its boundary "
            "(O'Brien-Fleming-type alpha spending over the planned test days).",
        },
        "description": "Each daily look's fixed-horizon p-value against its boundary"
        + (f", the first crossing on day {crossing.day}." if crossing is not None else "; no look crossed."),
        "width": 640,
        "height": 300,
        "data": {"values": values},
        "layer": layers,
    }


def _series_layer(series: str, mark: dict[str, Any], x: dict[str, Any], y: dict[str, Any]) -> dict[str, Any]:
    """One series' line, coloured and dashed by the shared ``series`` scales so the legend names both."""
    return {
        "transform": [{"filter": {"field": "series", "equal": series}}],
        "mark": mark,
        "encoding": {
            "x": x,
            "y": y,
            "stroke": {
                "field": "series",
                "type": "nominal",
                "title": None,
                "scale": {"domain": list(SERIES_COLOURS), "range": list(SERIES_COLOURS.values())},
                "legend": {"symbolType": "stroke"},
            },
            "strokeDash": {
                "field": "series",
                "type": "nominal",
                "title": None,
                "scale": {"domain": list(SERIES_DASHES), "range": list(SERIES_DASHES.values())},
            },
            "tooltip": [
                {"field": "date", "type": "temporal", "title": "Look date"},
                {"field": "day", "type": "quantitative", "title": "Test day"},
                {"field": "series", "type": "nominal", "title": "Series"},
                {"field": "value", "type": "quantitative", "title": "Value", "format": ".3g"},
            ],
        },
    }


def _crossing_layer(look: GeoLook, x: dict[str, Any], y: dict[str, Any]) -> dict[str, Any]:
    """An open ring at the first look that crossed its boundary, labelled with its day."""
    datum = {
        "date": look.date.isoformat(),
        "drawn": max(look.p_value_fixed_horizon, LOG_FLOOR),
        "label": f"crossed on day {look.day}",
    }
    return {
        "data": {"values": [datum]},
        "layer": [
            {
                "mark": {"type": "point", "shape": "circle", "size": 220, "filled": False, "color": "black"},
                "encoding": {"x": x, "y": y},
            },
            {
                "mark": {"type": "text", "align": "left", "baseline": "top", "dx": 8, "dy": 6, "color": "black"},
                "encoding": {"x": x, "y": y, "text": {"field": "label"}},
            },
        ],
    }
