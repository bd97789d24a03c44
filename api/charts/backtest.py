"""The Vega-Lite chart of a backtest: each placebo window as a segment at the lift estimated in it, coloured
by the verdict, stacked under the chart of the result it backtests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any, Protocol


class PlaceboWindow(Protocol):
    """A placebo window: its first and last day, whether the test called it significant, the lift it estimated."""

    @property
    def start(self) -> date: ...
    @property
    def end(self) -> date: ...
    @property
    def significant(self) -> bool: ...
    @property
    def relative_lift(self) -> float | None: ...


class BacktestFigures(Protocol):
    """What the chart says of a backtest: its method, level, window count and rates, and its windows."""

    @property
    def method(self) -> str: ...
    @property
    def alpha(self) -> float: ...
    @property
    def windows(self) -> int: ...
    @property
    def false_positive_rate(self) -> float: ...
    @property
    def detection_rate(self) -> float | None: ...
    @property
    def effect(self) -> float | None: ...
    @property
    def placebo_rmse(self) -> float | None: ...
    @property
    def placebo_windows(self) -> Sequence[PlaceboWindow]: ...


def backtest_chart(backtest_figures: BacktestFigures) -> dict[str, Any]:
    """Vega-Lite layer: each placebo window as a segment at the lift estimated in it, coloured by the verdict."""
    values = [
        {
            "start": w.start.isoformat(),
            "end": (w.end + timedelta(days=1)).isoformat(),
            "relative_lift": w.relative_lift,
            "verdict": "significant (false positive)" if w.significant else "not significant",
        }
        for w in backtest_figures.placebo_windows
    ]
    b = backtest_figures
    # Short lines anchored left: one long centred line ran past the chart's left edge on the page.
    subtitle = [
        f"{round(b.false_positive_rate * b.windows)} of {b.windows} placebo windows significant at alpha {b.alpha:g}"
    ]
    if b.detection_rate is not None:
        subtitle.append(f"detected {b.detection_rate:.0%} at an effect of {b.effect:+.1%}")
    if b.placebo_rmse is not None:
        subtitle.append(f"placebo RMSE {b.placebo_rmse:.1%}")
    title = {"text": f"Backtest ({b.method})", "subtitle": subtitle, "anchor": "start", "frame": "group"}
    x = {"field": "start", "type": "temporal", "title": "Placebo window (pre-period)"}
    return {
        "title": title,
        "width": 640,
        "height": 120,
        "data": {"values": values},
        "layer": [
            {
                "data": {"values": [{}]},  # one rule, not one per window
                "mark": {"type": "rule", "color": "gray", "strokeDash": [2, 2]},
                "encoding": {"y": {"datum": 0}},
            },
            {
                "transform": [{"filter": "datum.relative_lift != null"}],
                "mark": {"type": "rule", "strokeWidth": 3},
                "encoding": {
                    "x": x,
                    "x2": {"field": "end"},
                    "y": {
                        "field": "relative_lift",
                        "type": "quantitative",
                        "title": "Placebo lift",
                        "axis": {"format": "%"},
                    },
                    "color": {
                        "field": "verdict",
                        "type": "nominal",
                        "title": None,
                        "scale": {
                            "domain": ["not significant", "significant (false positive)"],
                            "range": ["#4c78a8", "#e45756"],
                        },
                    },
                },
            },
        ],
    }


def with_backtest(chart: dict[str, Any], backtest: BacktestFigures) -> dict[str, Any]:
    """``chart`` with the backtest's chart stacked under it."""
    top = {k: v for k, v in chart.items() if k != "$schema"}
    return {
        "$schema": chart.get("$schema"),
        "vconcat": [top, backtest_chart(backtest)],
        # Each view keeps its own colours and legends (beside it, not under both): a shared colour scale
        # took the lines' colours away.
        "resolve": {
            "scale": {"color": "independent"},
            "legend": {c: "independent" for c in ("color", "fill", "stroke", "strokeDash")},
        },
    }
