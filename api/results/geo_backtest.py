"""A geo result completed with its backtest (:mod:`api.backtests.service`), its chart and its warnings.

The injected effect is the planned one (the MDE of the market-selection design the experiment was created
from), else the result's own MDE (the relative effect its relative-lift interval detects with 80% power,
:func:`stats.geo.backtest.interval_mde`), else :data:`api.backtests.service.DEFAULT_EFFECT`. CPU work: callers
run :func:`complete_result` in a worker thread.
"""

from __future__ import annotations

import math
from datetime import date

import msgspec
import numpy as np

from api.backtests.schemas import GeoBacktest
from api.backtests.service import DEFAULT_EFFECT, MDE_POWER, BacktestInput, result_backtest
from api.charts.backtest import with_backtest
from api.geo.schemas import GeoResults
from stats.errors import InvalidProblem
from stats.geo.backtest import interval_mde
from stats.serial_correlation import is_strong, lag1_autocorrelation


def result_mde(result: GeoResults) -> float | None:
    """The relative effect the result's interval detects with 80% power (:func:`stats.geo.backtest.interval_mde`)."""
    relative = result.lift.relative
    if relative.ci_low is None or relative.ci_high is None:
        return None
    return interval_mde(relative.ci_low, relative.ci_high, result.confidence_level, MDE_POWER)


def _pre_residuals(result: GeoResults, test_start: date) -> np.ndarray:
    return np.array([p.observed - p.counterfactual for p in result.series if p.date < test_start])


def complete_result(result: GeoResults, data: BacktestInput) -> GeoResults:
    """The result with its backtest (and its chart), its residual lag-1 autocorrelation and their warnings."""
    test_start = data.dates[data.post.start]
    r1 = lag1_autocorrelation(_pre_residuals(result, test_start))
    warnings = list(result.warnings)
    if is_strong(r1) and result.method != "tbr":  # TBR flags its own residuals (stats.geo.tbr)
        warnings.append(
            f"The pre-period residuals are strongly serially correlated (lag-1 autocorrelation {r1:.2f}), beyond the "
            "dependence the method was calibrated on: read the interval with care and check the backtest."
        )
    alpha = 1.0 - result.confidence_level
    if data.planned_effect is not None:
        effect, source = data.planned_effect, "planned"
    else:
        mde = result_mde(result)
        effect, source = (mde, "result_mde") if mde is not None else (DEFAULT_EFFECT, "default")
    figures: GeoBacktest | None
    try:
        figures = result_backtest(data, alpha, effect, source)  # type: ignore[arg-type]
    except InvalidProblem as problem:
        figures = None
        warnings.append(f"No backtest: {problem.field} {problem.reason}.")
    chart = result.chart
    if figures is not None:
        warnings.extend(figures.warnings)
        if figures.best_method is not None:
            warnings.append(
                f"On placebo windows of this pre-period, {figures.best_method} backtests better than {figures.method} "
                "(see `backtest.compared`)."
            )
        chart = with_backtest(chart, figures)
    return msgspec.structs.replace(
        result,
        residual_autocorrelation=None if not math.isfinite(r1) else r1,
        backtest=figures,
        chart=chart,
        warnings=warnings,
    )
