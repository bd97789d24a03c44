"""A design's backtest on its own history: how the test behaves on placebo windows of the test's length.

No geo tool tells its user how its method behaves on *their* data.  For a design (treated markets, test
length ``d``), up to ``max_windows`` windows of ``d`` days are laid over the history, evenly spaced from
the latest back to the earliest that leaves ``3 d`` days (and at least :data:`MIN_PRE_DAYS`) before it.  In each
the panel is cut at the window's end and

* the test the results run (:func:`stats.geo_power.block_test_rejects`) is run with no effect: the share
  of windows declared significant is the test's **empirical false-positive rate** on these data;
* the synthetic control fitted on the days before the window estimates the relative lift in it: with no
  effect the truth is 0, so the **placebo RMSE** of those estimates is the error the design's estimates
  carry;
* the planned effect (``effect``, e.g. the MDE) is injected (KPI x (1 + effect)) and the test run again:
  the share detected is the **empirical power**.

A one-sided binomial test (``P(X >= k)`` for ``X ~ Binomial(n, alpha)``) says whether the empirical
false-positive rate exceeds ``alpha`` by more than the window count explains; below 0.05 a warning says
the test's p-values are too small on these data.  The windows overlap when the history is short, so the
rates are less precise than ``n`` independent tests would be; the count is reported with them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.stats import binom

from stats.errors import InvalidProblem
from stats.geo_power import Side, WindowTest, pre_period_fit
from stats.magnitude import check_magnitude

FloatArray = NDArray[np.float64]
MIN_PRE_DAYS = 7
# Windows keep at least this many times their length of history before them: with less the test is weaker
# than the one the design is for (its permutation distribution has fewer blocks, its fit fewer days).
PRE_TO_TEST_RATIO = 3
EXCESS_LEVEL = 0.05

__all__ = ["DesignBacktest", "backtest_design", "backtest_window_ends"]


@dataclass(frozen=True)
class DesignBacktest:
    """The empirical behaviour of a design's test on ``windows`` placebo windows of its history."""

    windows: int
    false_positive_rate: float
    false_positive_excess_p_value: float
    placebo_rmse: float | None
    effect: float | None
    detection_rate: float | None
    warnings: tuple[str, ...]


def backtest_window_ends(n_periods: int, duration: int, max_windows: int) -> list[int]:
    """Ends (exclusive) of up to ``max_windows`` placebo windows, latest first, evenly spaced."""
    earliest = duration + max(PRE_TO_TEST_RATIO * duration, MIN_PRE_DAYS)
    if earliest > n_periods:
        return []
    count = min(max_windows, n_periods - earliest + 1)
    return sorted({round(float(e)) for e in np.linspace(n_periods, earliest, count)}, reverse=True)


def backtest_design(
    treated_markets: FloatArray,
    donors: FloatArray,
    duration: int,
    *,
    effect: float | None,
    alpha: float,
    side: Side = "two-sided",
    fixed_effects: bool = True,
    ridge_lambda: float | None = None,
    max_windows: int = 20,
) -> DesignBacktest:
    """Placebo windows of the design over its history (see the module docstring)."""
    y_markets = np.atleast_2d(np.asarray(treated_markets, dtype=np.float64))
    b = np.asarray(donors, dtype=np.float64)
    check_magnitude(y_markets, "dataset")
    check_magnitude(b, "dataset")
    ends = backtest_window_ends(y_markets.shape[1], duration, max_windows)
    if not ends:
        raise InvalidProblem("durations", f"the history is too short for a backtest of {duration}-day windows")
    y = y_markets.mean(axis=0)
    effects = np.array([0.0] if effect is None else [0.0, effect])
    decisions = np.zeros((len(ends), effects.size))
    lifts: list[float] = []
    for i, end in enumerate(ends):
        test = WindowTest(y[:end], b[:end], duration, alpha, side, fixed_effects, ridge_lambda, end)
        decisions[i] = test.power(effects)[1]
        lift = pre_period_fit(y[:end], b[:end], duration, fixed_effects, ridge_lambda)[2]
        if lift is not None:
            lifts.append(lift)
    n = len(ends)
    false_positives = int(decisions[:, 0].sum())
    excess = float(binom.sf(false_positives - 1, n, alpha)) if false_positives > 0 else 1.0
    warnings: list[str] = []
    if excess < EXCESS_LEVEL:
        warnings.append(
            f"the test declared {false_positives} of {n} placebo windows significant at alpha {alpha:g} (more than "
            f"chance explains, p = {excess:.3f}): on this history its p-values are too small; prefer longer tests, "
            "other markets or a longer history, and read a significant result with care"
        )
    rmse = float(np.sqrt(np.mean(np.square(lifts)))) if lifts else None
    return DesignBacktest(
        windows=n,
        false_positive_rate=false_positives / n,
        false_positive_excess_p_value=excess,
        placebo_rmse=rmse,
        effect=effect,
        detection_rate=None if effect is None else float(decisions[:, 1].mean()),
        warnings=tuple(warnings),
    )
