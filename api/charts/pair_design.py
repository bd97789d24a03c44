"""The Vega-Lite chart of a matched-pair design: precision against the number of pairs kept.

As trimmed_match's design colab plots it: each design's RMSE of the iROAS estimate (here as the minimum
detectable iROAS, ``RMSE x (z(1 - alpha) + z(power))``, the figure a buyer reads) against pairs kept, one
line per budget, the recommended design marked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from api.charts import VEGA_LITE_SCHEMA


class BudgetPrecision(Protocol):
    """A design's precision at one budget."""

    @property
    def budget(self) -> float: ...
    @property
    def minimum_detectable_iroas(self) -> float: ...
    @property
    def rmse(self) -> float: ...


class PairDesign(Protocol):
    """A matched-pair design: the pairs it keeps and its precision at each budget."""

    @property
    def pairs_kept(self) -> int: ...
    @property
    def budgets(self) -> Sequence[BudgetPrecision]: ...


def _budget_label(budget: float) -> str:
    return f"budget {budget:,.0f}"


def pair_design_chart(
    designs: Sequence[PairDesign], recommended: int | None, target_iroas: float | None, budgets_given: bool
) -> dict[str, Any]:
    """Minimum detectable iROAS against pairs kept (one line per budget), the recommended design and the target."""
    values = [
        {
            "pairs_kept": design.pairs_kept,
            "budget": _budget_label(evaluation.budget) if budgets_given else "budget reaching the target iROAS",
            "minimum_detectable_iroas": evaluation.minimum_detectable_iroas,
            "rmse": evaluation.rmse,
        }
        for design in designs
        for evaluation in design.budgets
    ]
    labels = list(dict.fromkeys(v["budget"] for v in values))
    x = {
        "field": "pairs_kept",
        "type": "quantitative",
        "title": "Pairs kept",
        "scale": {"zero": False, "padding": 16},  # the end designs off the axes, the recommended often one
        "axis": {"tickMinStep": 1, "format": "d"},
    }
    layers: list[dict[str, Any]] = [
        {
            "data": {"values": values},
            "mark": {"type": "line", "point": True},
            "encoding": {
                "x": x,
                "y": {
                    "field": "minimum_detectable_iroas",
                    "type": "quantitative",
                    "title": "Minimum detectable iROAS",
                },
                "color": {"field": "budget", "type": "nominal", "title": "Budget", "sort": labels},
                "tooltip": [
                    {"field": "pairs_kept", "title": "Pairs kept"},
                    {"field": "budget", "title": "Budget"},
                    {"field": "minimum_detectable_iroas", "title": "Minimum detectable iROAS", "format": ".3f"},
                    {"field": "rmse", "title": "RMSE of the iROAS estimate", "format": ".3f"},
                ],
            },
        }
    ]
    if recommended is not None:
        layers.append(_marker({"pairs_kept": recommended, "label": f"recommended: {recommended} pairs"}, x, "x"))
        layers.append(_rings([v for v in values if v["pairs_kept"] == recommended], x))
    if target_iroas is not None:
        layers.append(
            _marker({"minimum_detectable_iroas": target_iroas, "label": f"target iROAS {target_iroas:g}"}, x, "y")
        )
    return {
        "$schema": VEGA_LITE_SCHEMA,
        "description": "Minimum detectable iROAS of each matched-pair design against the pairs it keeps.",
        "width": 640,
        "height": 300,
        "layer": layers,
    }


def _rings(recommended: list[dict[str, Any]], x: dict[str, Any]) -> dict[str, Any]:
    """An open circle around each budget's point of the recommended design."""
    return {
        "data": {"values": recommended},
        "mark": {
            "type": "point",
            "shape": "circle",
            "size": 220,
            "filled": False,
            "color": "black",
            "strokeWidth": 1.5,
        },
        "encoding": {"x": x, "y": {"field": "minimum_detectable_iroas", "type": "quantitative"}},
    }


def _marker(datum: dict[str, Any], x: dict[str, Any], axis: str) -> dict[str, Any]:
    """A dashed, labelled rule: at a number of pairs (``axis`` "x") or at an iROAS (``axis`` "y")."""
    if axis == "x":
        position = {"x": x}
        text = {"mark": {"type": "text", "align": "left", "baseline": "top", "dx": 4, "y": 4, "color": "gray"}}
    else:
        position = {"y": {"field": "minimum_detectable_iroas", "type": "quantitative"}}
        text = {
            "mark": {"type": "text", "align": "right", "baseline": "bottom", "dy": -2, "x": "width", "color": "gray"}
        }
    return {
        "data": {"values": [datum]},
        "layer": [
            {"mark": {"type": "rule", "strokeDash": [4, 4], "color": "gray"}, "encoding": position},
            {**text, "encoding": {**position, "text": {"field": "label"}}},
        ],
    }
