"""The Vega-Lite forest plot of a holdout test: each channel's lift with its interval, coloured by the decision."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from api.charts import VEGA_LITE_SCHEMA


class Estimate(Protocol):
    """An estimate with its interval; null where unavailable."""

    @property
    def estimate(self) -> float | None: ...
    @property
    def ci_low(self) -> float | None: ...
    @property
    def ci_high(self) -> float | None: ...


class Lift(Protocol):
    """A channel's absolute and relative lift."""

    @property
    def absolute(self) -> Estimate: ...
    @property
    def relative(self) -> Estimate: ...


class Decision(Protocol):
    """What to do about a channel (``scale``, ``iterate``, ``stop``, ``investigate``)."""

    @property
    def action(self) -> str: ...


class Channel(Protocol):
    """A channel's name, lift and decision."""

    @property
    def channel(self) -> str: ...
    @property
    def lift(self) -> Lift: ...
    @property
    def decision(self) -> Decision: ...


def forest_plot(channels: Sequence[Channel], confidence_level: float) -> dict[str, Any]:
    """A Vega-Lite v5 forest plot: relative lift (absolute in sequential mode) per channel with its CI."""
    use_relative = all(c.lift.relative.estimate is not None for c in channels)
    values = []
    for channel in channels:
        interval = channel.lift.relative if use_relative else channel.lift.absolute
        values.append(
            {
                "channel": channel.channel,
                "estimate": interval.estimate,
                "ci_low": interval.ci_low,
                "ci_high": interval.ci_high,
                "decision": channel.decision.action,
            }
        )
    title = "Relative lift" if use_relative else "Absolute lift"
    x_axis = {"title": f"{title} ({confidence_level:.0%} CI)"} | ({"format": "%"} if use_relative else {})
    y = {"field": "channel", "type": "nominal", "title": None}
    return {
        "$schema": VEGA_LITE_SCHEMA,
        "description": f"{title} per channel with {confidence_level:.0%} confidence intervals",
        "data": {"values": values},
        "layer": [
            {
                "mark": "rule",
                "encoding": {
                    "y": y,
                    "x": {"field": "ci_low", "type": "quantitative", "axis": x_axis},
                    "x2": {"field": "ci_high"},
                },
            },
            {
                "mark": {"type": "point", "filled": True, "size": 80},
                "encoding": {
                    "y": y,
                    "x": {"field": "estimate", "type": "quantitative"},
                    "color": {"field": "decision", "type": "nominal", "title": "Decision"},
                },
            },
            # Its own datum (one rule, not one per channel) and no y: it spans every channel's row.
            {"data": {"values": [{}]}, "mark": {"type": "rule", "strokeDash": [4, 4]}, "encoding": {"x": {"datum": 0}}},
        ],
    }
