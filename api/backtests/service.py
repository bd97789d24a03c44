"""The backtest shipped with every geo result and design, and the residual autocorrelation.

A geo result's backtest (:func:`result_backtest`) runs the result's own method, and every other method
the experiment allows, on placebo windows of the test's length in the pre-period with the same treated
(and control) markets (:mod:`stats.geo.backtest`): the empirical false-positive rate with its window
count, the RMSE of the placebo lift estimates, the empirical power at the planned effect, a warning when
the false-positive rate exceeds alpha by more than the window count explains, and the method that
backtests best when it is not the one asked for.  The injected effect is the planned one (the MDE of
the market-selection design the experiment was created from), else the result's own MDE (the relative
effect its relative-lift interval detects with 80% power, :func:`stats.geo.backtest.interval_mde`), else
:data:`DEFAULT_EFFECT`.  Budget: 0.1-0.3 s on GeoLift's walkthrough panel (``bench/bench_geo_backtest.py``);
ridge-augmented SCM, whose re-fits cost ``O(T0^2)`` per window, is compared only on pre-periods of at most
:data:`ASCM_COMPARISON_MARKET_DAYS` control market-days unless it is the method asked for.  CPU work:
callers (``api/results/geo_backtest.py``) run it in a worker thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from api.backtests.schemas import (
    EffectSource,
    GeoBacktest,
    MethodBacktestSummary,
    PlaceboWindowResult,
)
from api.fields.interval import finite_or_none
from stats.errors import InvalidProblem
from stats.geo.backtest import (
    Backtest,
    WindowAnalysis,
    backtest,
    best_backtest,
    conformal_window_test,
    tbr_window_test,
    trimmed_match_window_test,
)
from stats.geo.market_selection import design_ridge_lambda
from stats.geo.tbr import TBRIntervalKind
from stats.geo.trimmed_match import DEFAULT_MAX_TRIM_RATE, trimmed_match

DEFAULT_EFFECT = 0.05
MDE_POWER = 0.8
# ASCM's re-fits cost O(T0^2) per window: it joins the comparison (when not the method asked for) only on
# pre-period panels of at most this many control market-days (GeoLift's walkthrough: 38 x 90 = 3,420).
ASCM_COMPARISON_MARKET_DAYS = 10_000


@dataclass(frozen=True)
class BacktestInput:
    """What a result's backtest needs: the panel (markets x analysed dates), the two periods and the design."""

    panel: np.ndarray
    geos: list[str]
    dates: list[date]
    pre: slice
    post: slice
    treated: list[str]
    controls: list[str]
    pairs: list[tuple[str, str]] | None
    pair_spend_delta: np.ndarray | None  # per pair, test-period spend treatment minus control
    method: str
    interval: TBRIntervalKind
    planned_effect: float | None
    trim_rate: float | None = None  # trimmed match's rate fixed by the design; None: the result's own choice
    max_trim_rate: float = DEFAULT_MAX_TRIM_RATE  # the bound of the result's own choice


def shape_backtest(
    result: Backtest,
    dates: Sequence[date],
    effect_source: EffectSource | None,
    compared: Sequence[Backtest] = (),
) -> GeoBacktest:
    """The API shape of a stats backtest; ``dates`` are the history's, ``compared`` the other methods run."""
    best = best_backtest([result, *compared]) if compared else None
    return GeoBacktest(
        method=result.method,
        alpha=result.alpha,
        windows=result.windows,
        false_positive_rate=result.false_positive_rate,
        false_positive_excess_p_value=result.false_positive_excess_p_value,
        placebo_rmse=finite_or_none(result.placebo_rmse),
        effect=result.effect,
        effect_source=effect_source if result.effect is not None else None,
        detection_rate=result.detection_rate,
        placebo_windows=[
            PlaceboWindowResult(
                start=dates[w.start],
                end=dates[w.end - 1],
                significant=w.significant,
                relative_lift=finite_or_none(w.relative_lift),
                detected=w.detected,
            )
            for w in result.placebo_windows
        ],
        best_method=None if best is None or best.method == result.method else best.method,
        compared=[
            MethodBacktestSummary(
                method=b.method,
                false_positive_rate=b.false_positive_rate,
                false_positive_excess_p_value=b.false_positive_excess_p_value,
                placebo_rmse=finite_or_none(b.placebo_rmse),
                detection_rate=b.detection_rate,
            )
            for b in ([result, *compared] if compared else [])
        ],
        warnings=list(result.warnings),
    )


def _rows(geos: list[str], names: Sequence[str]) -> list[int]:
    index = {g: i for i, g in enumerate(geos)}
    return [index[g] for g in names]


def method_analyses(data: BacktestInput, alpha: float, duration: int) -> dict[str, WindowAnalysis]:
    """The window analysis of every method the experiment allows, on the pre-period."""
    history = data.panel[:, data.pre]
    treated = history[_rows(data.geos, data.treated)]
    donors = history[_rows(data.geos, data.controls)].T
    analyses: dict[str, WindowAnalysis] = {
        "synthetic_control": conformal_window_test(treated, donors, duration, alpha),
        "tbr": tbr_window_test(treated.sum(axis=0), donors.sum(axis=1), duration, alpha, data.interval),
    }
    if data.method == "augmented_synthetic_control" or donors.size <= ASCM_COMPARISON_MARKET_DAYS:
        ridge_lambda = design_ridge_lambda(treated.mean(axis=0), donors, True)
        analyses["augmented_synthetic_control"] = conformal_window_test(
            treated, donors, duration, alpha, ridge_lambda=ridge_lambda
        )
    spend = data.pair_spend_delta
    pairs = data.pairs
    if pairs is not None and len(pairs) >= 3 and spend is not None and np.isfinite(spend).all():
        t_rows, c_rows = _rows(data.geos, [t for t, _ in pairs]), _rows(data.geos, [c for _, c in pairs])
        test = data.panel[:, data.post]
        if np.max(np.abs(spend)) >= 1e-10 and np.isfinite(test[t_rows + c_rows]).all():
            response = test[t_rows].sum(axis=1) - test[c_rows].sum(axis=1)
            trim_rate = data.trim_rate
            if trim_rate is None:  # the result's own choice, within the result's bound
                trim_rate = trimmed_match(response, spend, 1.0 - alpha, max_trim_rate=data.max_trim_rate).trim_rate
            analyses["trimmed_match"] = trimmed_match_window_test(
                history[t_rows], history[c_rows], spend, duration, alpha, trim_rate
            )
    return analyses


def result_backtest(data: BacktestInput, alpha: float, effect: float, effect_source: EffectSource) -> GeoBacktest:
    """The result's method and every other allowed one on the same placebo windows (CPU work).

    Raises :class:`~stats.errors.InvalidProblem` (field ``pre_period``) when the pre-period is too short.
    """
    duration = data.post.stop - data.post.start
    n_pre = data.pre.stop - data.pre.start
    if not np.isfinite(data.panel[:, data.pre]).all():
        raise InvalidProblem("pre_period", "has missing market-dates; the backtest needs every value")
    analyses = method_analyses(data, alpha, duration)
    if data.method not in analyses:
        raise InvalidProblem("pairs", "need at least 3 pairs with spend that differs within them for a backtest")
    runs: dict[str, Backtest] = {}
    for method, analysis in analyses.items():
        try:
            runs[method] = backtest(
                n_pre, duration, analysis, method=method, effect=effect, alpha=alpha, field="pre_period"
            )
        except InvalidProblem:
            if method == data.method:
                raise
    own = runs.pop(data.method)
    return shape_backtest(own, data.dates[data.pre], effect_source, list(runs.values()))
