"""A geo test's backtest on its own history: how the method behaves on placebo windows of the test's length.

No geo tool tells its user how its method behaves on *their* data.  For a test of ``d`` days on a history
of ``T`` days (a design's history, or a result's pre-period), up to ``max_windows`` windows of ``d`` days
are laid over the history, evenly spaced from the latest back to the earliest that leaves ``3 d`` days
(and at least :data:`MIN_PRE_DAYS`) before it.  In each, with the same treated markets, the panel is cut
at the window's end, the window plays the test period and the days before it the pre-period, and the
method's own analysis (a :data:`WindowTest`) is run

* with no effect: the share of windows declared significant at ``alpha`` is the method's **empirical
  false-positive rate** on these data, and since the truth is 0 the **placebo RMSE** of its relative
  lift estimates (incremental over counterfactual) is the error its estimates carry here;
* with the planned effect injected into the treated markets' KPI on the window's days (``KPI x (1 +
  effect)``): the share detected is the **empirical power**.

The window tests, one per method, each the decision the results endpoint makes:

* :func:`conformal_window_test` -- synthetic control or ridge-augmented SCM (the penalty held fixed):
  the conformal test of no average effect (:class:`stats.geo.power.WindowTest`, block permutations of
  ``|sum of test-day residuals|``, the estimator re-fitted on every day; the injected effect enters the
  re-fit exactly) and the relative lift of the fit on the days before the window;
* :func:`tbr_window_test` -- TBR (treated total on control total) with the ``"conformal"`` or
  ``"kerman"`` test (:mod:`stats.geo.tbr`), all effects of a window in one vectorised batch: the conformal
  decision at ``Delta = 0`` is the block-permutation test on the held-out, level-scaled, studentized window sums of
  :func:`stats.geo.tbr_conformal.held_out_window_sums` (what :func:`stats.geo.tbr.estimate_tbr` reports as
  ``p_value <= alpha``, without inverting it into an interval);
  Kerman's is ``|Delta_hat| / se`` against t with ``T0 - 2`` degrees of freedom;
* :func:`trimmed_match_window_test` -- trimmed match on each pair's treatment-minus-control KPI summed
  over the window, against the experiment's own spend deltas (no spend moved in the history, so the
  placebo asks: had this spend contrast run in this window, would the iROAS interval have excluded 0),
  at the trim rate the result chose (choosing it again in every window would cost ~10x more); with the
  effect injected, a window whose trimmed-mean test accepts 0 is not inverted into an interval (it holds 0).

A one-sided binomial test (``P(X >= k)`` for ``X ~ Binomial(n, alpha)``) says whether the empirical
false-positive rate exceeds ``alpha`` by more than the window count explains; below 0.05 a warning says
the method's p-values are too small on these data.  The windows overlap when the history is short, so the
rates are less precise than ``n`` independent tests would be; the count is reported with them.

:func:`best_backtest` names the method that backtests best among several on the same windows: among those
whose false-positive rate is not significantly above ``alpha``, the highest empirical power (then the
smallest placebo RMSE); without an injected effect, the smallest placebo RMSE.

:func:`interval_mde` is the effect a result's own interval detects with 80% power, the effect a result's
backtest injects when no design planned one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats as scipy_stats
from scipy.stats import binom

from stats.errors import InvalidProblem
from stats.geo.power import Side, WindowTest, pre_period_fit
from stats.geo.tbr import TBRIntervalKind, tbr_effect_batch
from stats.geo.tbr_conformal import held_out_window_sums, two_sided_p_values
from stats.geo.trimmed_match import trimmed_match, trimmed_mean_test_p_value, trimmed_per_side
from stats.magnitude import check_magnitude

FloatArray = NDArray[np.float64]
MIN_PRE_DAYS = 7
# Windows keep at least this many times their length of history before them: with less the test is weaker
# than the one the design is for (its permutation distribution has fewer blocks, its fit fewer days).
PRE_TO_TEST_RATIO = 3
EXCESS_LEVEL = 0.05
MAX_WINDOWS = 20

__all__ = [
    "Backtest",
    "PlaceboWindow",
    "WindowOutcome",
    "WindowTest",
    "backtest",
    "backtest_design",
    "backtest_window_ends",
    "best_backtest",
    "conformal_window_test",
    "interval_mde",
    "tbr_window_test",
    "trimmed_match_window_test",
]


@dataclass(frozen=True)
class WindowOutcome:
    """One window's analysis: ``rejects[i]`` is 1.0 where effect ``i`` was declared significant; the
    relative lift the method estimates with no effect injected (``None`` when it has none)."""

    rejects: FloatArray
    relative_lift: float | None


# The method's analysis of the panel cut at ``end`` (exclusive), its last ``duration`` days the test,
# for each effect injected (``effects[0] == 0``).
WindowAnalysis = Callable[[int, FloatArray], WindowOutcome]


@dataclass(frozen=True)
class PlaceboWindow:
    """One placebo window: days ``start..end - 1`` of the history, what the method said there."""

    start: int
    end: int
    significant: bool
    relative_lift: float | None
    detected: bool | None


@dataclass(frozen=True)
class Backtest:
    """The empirical behaviour of ``method`` on ``windows`` placebo windows of its history."""

    method: str
    alpha: float
    windows: int
    false_positive_rate: float
    false_positive_excess_p_value: float
    placebo_rmse: float | None
    effect: float | None
    detection_rate: float | None
    placebo_windows: tuple[PlaceboWindow, ...]
    warnings: tuple[str, ...]

    @property
    def false_positive_excess(self) -> bool:
        """The false-positive rate exceeds alpha by more than the window count explains (binomial, 5%)."""
        return self.false_positive_excess_p_value < EXCESS_LEVEL


def backtest_window_ends(n_periods: int, duration: int, max_windows: int) -> list[int]:
    """Ends (exclusive) of up to ``max_windows`` placebo windows, latest first, evenly spaced."""
    earliest = duration + max(PRE_TO_TEST_RATIO * duration, MIN_PRE_DAYS)
    if earliest > n_periods:
        return []
    count = min(max_windows, n_periods - earliest + 1)
    return sorted({round(float(e)) for e in np.linspace(n_periods, earliest, count)}, reverse=True)


def backtest(
    n_periods: int,
    duration: int,
    analysis: WindowAnalysis,
    *,
    method: str,
    effect: float | None,
    alpha: float,
    max_windows: int = MAX_WINDOWS,
    field: str = "durations",
) -> Backtest:
    """Run ``analysis`` on the placebo windows of a ``n_periods``-day history (see the module docstring).

    Raises :class:`~stats.errors.InvalidProblem` naming ``field`` when the history is too short for one window.
    """
    ends = backtest_window_ends(n_periods, duration, max_windows)
    if not ends:
        raise InvalidProblem(
            field,
            f"the history ({n_periods} days) is too short for a backtest of {duration}-day windows (each needs "
            f"{max(PRE_TO_TEST_RATIO * duration, MIN_PRE_DAYS)} days before it)",
        )
    effects = np.array([0.0] if effect is None else [0.0, effect])
    placebo: list[PlaceboWindow] = []
    for end in ends:
        outcome = analysis(end, effects)
        placebo.append(
            PlaceboWindow(
                start=end - duration,
                end=end,
                significant=bool(outcome.rejects[0] > 0.5),
                relative_lift=outcome.relative_lift,
                detected=None if effect is None else bool(outcome.rejects[1] > 0.5),
            )
        )
    n = len(placebo)
    false_positives = sum(w.significant for w in placebo)
    excess = float(binom.sf(false_positives - 1, n, alpha)) if false_positives > 0 else 1.0
    warnings: list[str] = []
    if excess < EXCESS_LEVEL:
        warnings.append(
            f"{method}: the test declared {false_positives} of {n} placebo windows significant at alpha {alpha:g} "
            f"(more than chance explains, p = {excess:.3f}): on this history its p-values are too small; prefer "
            "longer tests, other markets, another method or a longer history, and read a significant result with care"
        )
    lifts = [w.relative_lift for w in placebo if w.relative_lift is not None and math.isfinite(w.relative_lift)]
    return Backtest(
        method=method,
        alpha=alpha,
        windows=n,
        false_positive_rate=false_positives / n,
        false_positive_excess_p_value=excess,
        placebo_rmse=float(np.sqrt(np.mean(np.square(lifts)))) if lifts else None,
        effect=effect,
        detection_rate=None if effect is None else float(np.mean([bool(w.detected) for w in placebo])),
        placebo_windows=tuple(placebo),
        warnings=tuple(warnings),
    )


def conformal_window_test(
    treated_markets: FloatArray,
    donors: FloatArray,
    duration: int,
    alpha: float,
    side: Side = "two-sided",
    fixed_effects: bool = True,
    ridge_lambda: float | None = None,
) -> WindowAnalysis:
    """Synthetic control (``ridge_lambda`` ``None``) or ASCM with that penalty: ``treated_markets`` ``(n, T)``,
    ``donors`` ``(T, J)``; the treated markets are averaged, as the results do."""
    y = np.atleast_2d(np.asarray(treated_markets, dtype=np.float64)).mean(axis=0)
    b = np.asarray(donors, dtype=np.float64)

    def analysis(end: int, effects: FloatArray) -> WindowOutcome:
        test = WindowTest(y[:end], b[:end], duration, alpha, side, fixed_effects, ridge_lambda, end)
        lift = pre_period_fit(y[:end], b[:end], duration, fixed_effects, ridge_lambda)[2]
        return WindowOutcome(rejects=test.power(effects)[1], relative_lift=lift)

    return analysis


def _ratio(incremental: float, observed: float) -> float | None:
    """Relative lift: incremental over the counterfactual (observed minus incremental), when that is positive."""
    counterfactual = observed - incremental
    return incremental / counterfactual if counterfactual > 0.0 and math.isfinite(incremental) else None


def tbr_window_test(
    treated_total: FloatArray, control_total: FloatArray, duration: int, alpha: float, interval: TBRIntervalKind
) -> WindowAnalysis:
    """TBR on the treated markets' total ``(T,)`` against the control markets' total ``(T,)``, two-sided."""
    y = np.asarray(treated_total, dtype=np.float64)
    x = np.asarray(control_total, dtype=np.float64)

    def analysis(end: int, effects: FloatArray) -> WindowOutcome:
        pre, post = slice(0, end - duration), slice(end - duration, end)
        treated = np.repeat(y[None, :end], effects.size, axis=0)
        treated[:, post] *= 1.0 + effects[:, None]
        control = np.repeat(x[None, :end], effects.size, axis=0)
        delta, se, df = tbr_effect_batch(treated, control, pre, post)
        if interval == "conformal":
            sums = held_out_window_sums(treated, control, duration)
            rejects = np.asarray(two_sided_p_values(*sums) <= alpha, dtype=np.float64)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                t = np.where(se > 0.0, np.abs(delta) / np.where(se > 0.0, se, 1.0), np.inf)
            rejects = np.asarray(2.0 * scipy_stats.t.sf(t, df) <= alpha, dtype=np.float64)
        return WindowOutcome(rejects=rejects, relative_lift=_ratio(float(delta[0]), float(y[post].sum())))

    return analysis


def trimmed_match_window_test(
    treatment_kpi: FloatArray,
    control_kpi: FloatArray,
    spend_delta: FloatArray,
    duration: int,
    alpha: float,
    trim_rate: float,
) -> WindowAnalysis:
    """Trimmed match on pairs: ``treatment_kpi`` and ``control_kpi`` ``(P, T)`` per pair and day, the
    experiment's spend deltas ``(P,)`` and its trim rate; significant when the iROAS interval excludes 0."""
    treated = np.asarray(treatment_kpi, dtype=np.float64)
    control = np.asarray(control_kpi, dtype=np.float64)
    x = np.asarray(spend_delta, dtype=np.float64)

    def analysis(end: int, effects: FloatArray) -> WindowOutcome:
        window_treated = treated[:, end - duration : end].sum(axis=1)
        window_control = control[:, end - duration : end].sum(axis=1)
        rejects = np.zeros(effects.size)
        lift: float | None = None
        for i, effect in enumerate(effects):
            response = window_treated * (1.0 + effect) - window_control
            # The test accepts iROAS = 0, so 0 is in the accepted set whose hull is the interval.
            if i > 0 and trimmed_mean_test_p_value(response, trimmed_per_side(trim_rate, x.size)) > alpha:
                continue  # 0 is in the accepted set, so in the interval: not significant, no need to invert
            result = trimmed_match(response, x, 1.0 - alpha, trim_rate=trim_rate)
            rejects[i] = float(result.ci_low > 0.0 or result.ci_high < 0.0)
            if i == 0 and result.incremental_response.estimate is not None:
                lift = _ratio(float(result.incremental_response.estimate), float(window_treated.sum()))
        return WindowOutcome(rejects=rejects, relative_lift=lift)

    return analysis


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
    max_windows: int = MAX_WINDOWS,
) -> Backtest:
    """A design's backtest: its conformal test (SCM, or ASCM with ``ridge_lambda``) on placebo windows of its
    history, ``effect`` (the MDE) injected for the detection rate."""
    y_markets = np.atleast_2d(np.asarray(treated_markets, dtype=np.float64))
    check_magnitude(y_markets, "dataset")
    check_magnitude(np.asarray(donors, dtype=np.float64), "dataset")
    analysis = conformal_window_test(y_markets, donors, duration, alpha, side, fixed_effects, ridge_lambda)
    method = "synthetic_control" if ridge_lambda is None else "augmented_synthetic_control"
    return backtest(
        y_markets.shape[1], duration, analysis, method=method, effect=effect, alpha=alpha, max_windows=max_windows
    )


def best_backtest(backtests: Sequence[Backtest]) -> Backtest | None:
    """The backtest of the method that behaves best on these windows (see the module docstring)."""
    if not backtests:
        return None

    def rmse(b: Backtest) -> float:
        return math.inf if b.placebo_rmse is None else b.placebo_rmse

    def key(b: Backtest) -> tuple[bool, float, float, float]:
        power = -(b.detection_rate or 0.0)
        return (b.false_positive_excess, power, rmse(b), b.false_positive_rate)

    return min(backtests, key=key)


def interval_mde(ci_low: float, ci_high: float, confidence_level: float, power: float = 0.8) -> float | None:
    """The effect a two-sided interval's test detects with probability ``power``: ``(z_{1-alpha/2} + z_power) se``.

    The normal-approximation minimum detectable effect (Bloom 1995, "Minimum detectable effects", Evaluation
    Review 19(5); the other tail's rejections neglected), with ``alpha = 1 - confidence_level`` and the
    standard error read off the interval, ``se = (ci_high - ci_low) / 2 / z_{1-alpha/2}``. ``None`` when the
    result is not a finite positive number (an infinite bound, an empty interval).

    >>> round(interval_mde(-0.1, 0.1, 0.9), 4)  # se = 0.1 / 1.6449; (1.6449 + 0.8416) se
    0.1512
    """
    z = float(scipy_stats.norm.ppf(0.5 + confidence_level / 2.0))
    mde = 0.5 * (ci_high - ci_low) / z * (z + float(scipy_stats.norm.ppf(power)))
    return mde if math.isfinite(mde) and mde > 0.0 else None
