"""The backtest every geo result and every geo design carries, in one shape (see :mod:`stats.geo.backtest`)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from msgspec import Meta, Struct

EffectSource = Literal["planned", "design_mde", "result_mde", "default"]


class PlaceboWindowResult(Struct, frozen=True):
    """One placebo window of the history (no real effect in it) and what the method said there."""

    start: date
    end: Annotated[date, Meta(description="Last day of the window (inclusive).")]
    significant: Annotated[bool, Meta(description="The method declared the window significant: a false positive.")]
    relative_lift: Annotated[
        float | None, Meta(description="The relative lift the method estimated in the window, where the truth is 0.")
    ]
    detected: Annotated[
        bool | None, Meta(description="With `effect` injected, the method detected it (null without an effect).")
    ]


class MethodBacktestSummary(Struct, frozen=True):
    """One method's figures on the same placebo windows, for comparison."""

    method: str
    false_positive_rate: float
    false_positive_excess_p_value: float
    placebo_rmse: float | None
    detection_rate: float | None


class GeoBacktest(Struct, frozen=True):
    """The method's behaviour on placebo windows of the test's length in its own history, same treated markets."""

    method: Annotated[str, Meta(description="The method (and test) backtested: the one the result or design uses.")]
    alpha: Annotated[float, Meta(description="The significance level the windows were tested at.")]
    windows: Annotated[int, Meta(description="Placebo windows used (they overlap on short histories).")]
    false_positive_rate: Annotated[
        float, Meta(description="Share of the windows the test declared significant with no effect injected.")
    ]
    false_positive_excess_p_value: Annotated[
        float,
        Meta(
            description="One-sided binomial test that the false-positive rate exceeds alpha given the window count "
            "(a warning below 0.05)."
        ),
    ]
    placebo_rmse: Annotated[
        float | None,
        Meta(description="RMSE of the relative lift (incremental / counterfactual) estimated in the windows, truth 0."),
    ]
    effect: Annotated[float | None, Meta(description="The relative effect injected for `detection_rate`.")]
    effect_source: Annotated[
        EffectSource | None,
        Meta(
            description="Where `effect` comes from: `planned` (the MDE of the market-selection design the "
            "experiment was created from), `design_mde` (the design's own MDE), `result_mde` (the effect the "
            "result's interval detects with 80% power), `default` (5%, when neither exists)."
        ),
    ]
    detection_rate: Annotated[
        float | None, Meta(description="Share of the windows in which the test detected `effect` (empirical power).")
    ]
    placebo_windows: list[PlaceboWindowResult]
    best_method: Annotated[
        str | None,
        Meta(
            description="The method that backtests best on these windows when it is not `method` (lowest "
            "false-positive excess, then highest detection rate, then lowest placebo RMSE); null when `method` "
            "is best or no other was compared."
        ),
    ]
    compared: Annotated[
        list[MethodBacktestSummary],
        Meta(description="Every method backtested on the same windows (`method` included); empty when none else."),
    ]
    warnings: list[str]
