"""Power of a geo-lift test by simulation on historical windows, with the test the results use.

GeoLift's ``GeoLiftPower`` (Meta) simulates a test on the last ``L`` windows of the history: for a
window of ``d`` days ending ``w - 1`` days before the last day (``w = 1..L``), the panel is cut at the
window's end, the effect ``e`` is injected into the treated markets on the window's days
(``Y_it <- (1 + e) Y_it``), and the test is run with the window as its test period.  Its "power" is
the share of the ``L`` windows in which the test rejected -- with GeoLift's default ``L = 1`` it is
0 or 1 (GeoLift issues #48, #171), and whether one window's noise happened to favour the test
decides it.

Here each window runs the *same* test as ``GET /v1/experiments/{id}/results`` (the conformal test of
Chernozhukov, Wüthrich & Zhu 2021 as :mod:`stats.geo.conformal` implements it: the estimator re-fitted on
every period of the cut panel, deflated by its donors' level (:func:`stats.geo.conformal.donor_level`), under
``H0: no effect``, statistic ``|sum_{t test} u_t|`` -- or the
signed sum for a one-sided test -- against its ``T`` cyclic block permutations, reject when
``p <= alpha``), and its decision is reported as ``detected``.  The reported ``power`` is that test's
probability of rejecting when the test period's noise is drawn afresh, conditional on the design and
the history.  The test is valid because the residual noise ``u^0`` (the re-fit's residuals without the
effect) is exchangeable under cyclic shifts; the same assumption makes every shift ``u^0_{t+r}`` an
equally likely noise path.  With the injected effect the residuals are ``u^e = u^0 + m^e``, where the
signal ``m^e`` is computed exactly by re-fitting (the effect leaks partly into the fit), so

    power_w(e) = (1/T) sum_{r=0}^{T-1} 1{ test rejects on the residuals  shift_r(u^0) + m^e },

integrated over the noise scale's uncertainty (below), and ``power(e)`` averages ``power_w`` over the ``L``
windows.  ``r = 0`` is the real test on the real
window.  One correction for the test to come: the window's panel has ``T`` days, the real test will have
the whole history and the test (``T_h + d``), and with unit fixed effects the treated mean absorbs
``d / T`` of an effect, so the signal is scaled by ``(1 - d / (T_h + d)) / (1 - d / T)`` (without it the
prediction was 3-5 points low for 21-day tests on 110-day histories in the simulation of
``tests/stats/test_geo_power.py``; with it the gaps were within +-2.5 points).

Designed power must come true design by design, not only on average: in issue 23's process (21 markets, one
treated, 15-day tests, 20 windows, alpha 5%; ``simulations/geo_power_calibration.py``) the designs predicted at
80-100% detected 24 points less with 90-day histories (15 with 180).  A design's prediction is the truth plus
the noise of its one history, so the highest predictions are partly those whose history happened to favour the
test.  Two terms carried that noise and were not measured as such (2026-12-08, 150 histories x 3 futures, seed 23;
on the 17 designs of the 90-day row predicted at 80% or more, which detected 60.8%: predicted 84.7%):

* *The residuals' level drift, kept in place.*  Until then the paths were ``d_t + (u^0 - d)_{t+r}``: the residuals'
  regression on the synthetic control's smoothed level, ``d = beta z``, stayed on the test days while the rest was
  shifted, because before the test ran on the deflated panel a shared growth left a drift that sits on the test
  days of every future (shifting it away made the power 6-10 points pessimistic).  On the deflated panel a shared
  growth is divided out and ``z`` follows the markets' random trend: the drift on the window's test days is that
  window's excursion, which no future repeats.  Its block sum had a standard deviation of 0.45 noise blocks and a
  correlation of 0.42 with the prediction at a 15% effect; shifted with the rest, those 17 designs read 77.6%,
  and the mean prediction per effect moved by 1.5 points at most (main row).  The noise paths are now the plain
  rotations ``u^0_{t+r}``.
* *The noise scale, plugged in* (below): integrated over its uncertainty alone they read 78.6%; with both, 69.4%
  (8.6 points above what they detected, +- 7.7), and the slope of the realized rate on the prediction over all
  designs went from 0.73 to 1.00 (180 days: 0.83 to 0.91).

At ``e = 0`` the power is ``#{r : p_r <= alpha} / T``, at most ``alpha`` by construction.  The paths' block sums
are the shifted block sums of one path, so all ``T`` noise paths cost one ``T x T`` comparison per effect size and
scale node.

The noise's scale is estimated, not known.  The rotations draw the test's noise from the window's own path, so
``power_w`` is the power of the signal against the scale the history happened to show -- a plug-in.  The mean
square of the ``T`` cyclic ``d``-day block sums estimates their variance with about ``nu = 1.5 T / d`` degrees of
freedom (:func:`scale_degrees_of_freedom`: ``sigma_hat^2 ~ sigma^2 chi2_nu / nu``, the overlapping batch means of
Meketon & Schmeiser 1984), 8.3 for 15-day tests on 90 days, so a quiet-looking history reads a higher power than
its design has.  The reported power is the predictive power (Spiegelhalter, Freedman & Blackburn 1986; the
assurance of O'Hagan, Stevens & Campbell 2005): ``power_w`` averaged over the scale's posterior under the
reference prior ``p(sigma) ~ 1 / sigma``, for which ``w = sigma_hat / sigma ~ sqrt(chi2_nu / nu)``.  The noise
scaled by ``1 / w`` is the signal scaled by ``w`` (the test's decision does not depend on the common scale of its
statistics), so

    power_w(e) = E_w[ (1/T) sum_r 1{ test rejects on the residuals  shift_r(u^0) + w m^e } ],

the expectation taken over ``K = 16`` equally likely nodes ``w_k = sqrt(q_k / nu)``, ``q_k`` the ``(k + 1/2) / K``
quantiles of ``chi2_nu`` (:func:`scale_nodes`).  It lowers high predictions and raises low ones most where the
history is short relative to the test; at ``e = 0`` nothing changes.  Not a cause, and left alone: the window's
test allows ``floor(alpha T)`` blocks at least as extreme among its ``T = 76..90`` (3/76 to 4/90 at alpha 5% on
90 days), the real test 5/105, which makes the prediction slightly pessimistic at every level.

The MDE is the smallest effect in the grid (in absolute value, positive ones winning ties, as
GeoLift) whose power reaches ``power_target``; ``mde_exact`` refines it between that grid point and
the next smaller one by bisection to 1e-4 (the re-fits are piecewise affine in the effect, so each step
costs one pass of the comparison); the investment is ``cost_per_kpi * treated KPI over the window *
|MDE|`` (GeoLift's ``cpic * sum(Y_treated) * es``, made positive for negative effects as GeoLift does, on
the most recent window).  Each window needs as many days of history before it as it lasts.  The
pre-period fit is the SCM fitted on the days before the most recent window: its scaled L2 imbalance
(``augsynth``'s) and the relative lift it estimates on that window
without any effect (GeoLift's "abs lift in zero": a well-fitted design reads about 0).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy.stats import chi2

from stats.errors import InvalidProblem
from stats.geo.augmented_synthetic_control import AugmentedSyntheticControlFit, fit_augmented_synthetic_control
from stats.geo.conformal import LinearRefit, donor_level
from stats.geo.synthetic_control import SyntheticControlFit, fit_synthetic_control
from stats.magnitude import check_magnitude

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
Side = Literal["two-sided", "larger", "smaller"]

__all__ = [
    "DurationPower",
    "Side",
    "WindowTest",
    "block_sums",
    "block_test_rejects",
    "duration_power",
    "minimum_detectable_effect",
    "noise_rotation_power",
    "pre_period_fit",
    "scale_degrees_of_freedom",
    "scale_nodes",
]

# Relative tolerance for "S_k >= S_0" (ties count as at least as extreme, as in stats.geo.conformal).
_TIE_RTOL = 1e-10
# Equally likely nodes of the noise scale's posterior (module docstring).
SCALE_NODES = 16


@dataclass(frozen=True)
class DurationPower:
    """Simulated power of one design (treated markets, test length) over the effect grid.

    ``power[i]`` is the probability that the test detects ``effects[i]`` (averaged over ``windows``
    historical windows, each with its noise drawn afresh); ``detected[i]`` is the share of those
    windows in which the test on the actual history detected it (GeoLift's "power").  ``mde`` is
    ``None`` when no effect of the grid reaches ``power_target`` (``mde_exact`` the effect between grid
    points where the power reaches it); ``investment`` is ``None`` then or
    without a cost per KPI.
    """

    duration: int
    windows: int
    effects: tuple[float, ...]
    power: tuple[float, ...]
    detected: tuple[float, ...]
    mde: float | None
    mde_exact: float | None
    power_at_mde: float | None
    investment: float | None
    treated_kpi: float
    pre_rmse: float
    scaled_l2_imbalance: float
    lift_at_zero: float | None


def block_sums(values: FloatArray, start: int, length: int) -> FloatArray:
    """Cyclic block sums ``sum_{j<length} x[(start + k + j) mod T]`` for every shift ``k`` (last axis)."""
    x = np.asarray(values, dtype=np.float64)
    t = x.shape[-1]
    rolled = np.roll(x, -start, axis=-1)
    wrapped = np.concatenate([rolled, rolled[..., : length - 1]], axis=-1)
    csum = np.concatenate([np.zeros((*x.shape[:-1], 1)), np.cumsum(wrapped, axis=-1)], axis=-1)
    return np.asarray(csum[..., length : length + t] - csum[..., :t], dtype=np.float64)


def _oriented(sums: FloatArray, side: Side) -> FloatArray:
    if side == "two-sided":
        return np.abs(sums)
    return sums if side == "larger" else -sums


def noise_rotation_power(
    noise_blocks: FloatArray, signal_blocks: FloatArray, alpha: float, side: Side
) -> tuple[FloatArray, FloatArray]:
    """``(power, real)`` of the block-permutation test for each effect (rows of ``signal_blocks``).

    ``noise_blocks`` are the block sums of the no-effect residuals: ``(T,)`` for one path, whose shift by
    ``r`` gives block ``k`` the noise ``noise[k + r]``, or ``(T, T)`` with row ``r`` the block sums of the
    ``r``-th noise path (the shifts computed once, as :meth:`WindowTest.power` does); ``signal_blocks``
    ``(E, T)`` are those of the residual change each effect causes; block ``0`` is the test period.  With
    path ``r`` the statistic of block ``k`` is ``noise[r, k] + signal[k]``; the test rejects when at most
    ``alpha T`` blocks are at least as extreme as block ``0``.  ``power`` is the share of the ``T`` paths
    that reject, ``real`` the decision on path ``0`` (1.0 or 0.0).
    """
    noise = np.asarray(noise_blocks, dtype=np.float64)
    signal = np.atleast_2d(np.asarray(signal_blocks, dtype=np.float64))
    t = noise.shape[-1]
    if noise.ndim == 1:
        noise = noise[_shifts(t)]  # [r, k] -> k + r
    stats = _oriented(noise[None, :, :] + signal[:, None, :], side)  # E x r x k
    observed = stats[:, :, :1]
    scale = np.abs(noise).sum(axis=1)[None, :, None] + np.abs(signal).sum(axis=1)[:, None, None]
    extreme = np.sum(stats >= observed - _TIE_RTOL * scale - 1e-300, axis=2)  # E x r
    reject = extreme <= alpha * t * (1.0 + 1e-12)
    return np.asarray(reject.mean(axis=1), dtype=np.float64), np.asarray(reject[:, 0], dtype=np.float64)


def _shifts(t: int) -> IntArray:
    """``[r, k] -> (k + r) mod t``."""
    return np.asarray((np.arange(t)[:, None] + np.arange(t)[None, :]) % t, dtype=np.intp)


def block_test_rejects(blocks: FloatArray, alpha: float, side: Side) -> FloatArray:
    """The block-permutation test on residual block sums ``(E, T)`` (block 0 tested): 1.0 where it rejects.

    ``p = #{k : S_k >= S_0} / T`` with ``S`` the oriented block sums; rejects when ``p <= alpha`` (the
    decision :class:`stats.geo.conformal.ConformalTest` makes at ``theta = 0`` with block permutations).
    """
    stats = _oriented(np.atleast_2d(np.asarray(blocks, dtype=np.float64)), side)
    t = stats.shape[1]
    scale = np.abs(stats).sum(axis=1, keepdims=True)
    extreme = np.sum(stats >= stats[:, :1] - _TIE_RTOL * scale - 1e-300, axis=1)
    return np.asarray(extreme <= alpha * t * (1.0 + 1e-12), dtype=np.float64)


def scale_degrees_of_freedom(periods: int, duration: int) -> float:
    """Satterthwaite's degrees of freedom of ``sigma_hat^2 = (1/T) sum_k S_k^2``, the mean square of the ``T`` cyclic
    ``d``-day block sums of a demeaned ``T``-day path of white noise (``T >= 2 d - 1``):

        nu = (tr A)^2 / tr(A^2) = (T d - d^2)^2 / (T d (2 d^2 + 1) / 3 - d^4),

    ``A = P C P`` with ``C_ij = max(0, d - |i - j|)`` (cyclic distance; the number of blocks holding days ``i`` and
    ``j``) and ``P`` the demeaning projection, which removes ``C``'s eigenvalue ``d^2`` on the constants.  About
    ``1.5 T / d``: the overlapping batch means of Meketon & Schmeiser (1984)."""
    t, d = float(periods), float(duration)
    return (t * d - d * d) ** 2 / (t * d * (2.0 * d * d + 1.0) / 3.0 - d**4)


def scale_nodes(degrees_of_freedom: float, count: int = SCALE_NODES) -> FloatArray:
    """``w_k = sqrt(q_k / nu)``, ``q_k`` the ``(k + 1/2) / count`` quantiles of ``chi2_nu``: equally likely values of
    ``sigma_hat / sigma`` under the reference prior (module docstring)."""
    q = chi2.ppf((np.arange(count) + 0.5) / count, degrees_of_freedom)
    return np.asarray(np.sqrt(q / degrees_of_freedom), dtype=np.float64)


def minimum_detectable_effect(
    effects: Sequence[float], power: Sequence[float], power_target: float
) -> tuple[float | None, float | None]:
    """``(mde, power at it)``: the non-zero grid effect of smallest size whose power reaches the target.

    Positive and negative effects are searched apart and the smaller in absolute value wins, the
    positive one on a tie (GeoLift's ``GeoLiftMarketSelection`` rule).
    """
    best: tuple[float, float] | None = None
    for effect, p in zip(effects, power, strict=True):
        if effect == 0.0 or p < power_target - 1e-12:
            continue
        if best is None or abs(effect) < abs(best[0]) or (abs(effect) == abs(best[0]) and effect > 0.0):
            best = (float(effect), float(p))
    return (None, None) if best is None else best


class WindowTest:
    """The test on one historical window: the panel cut at the window's end, the last ``duration`` days tested."""

    def __init__(
        self,
        treated: FloatArray,
        donors: FloatArray,
        duration: int,
        alpha: float,
        side: Side,
        fixed_effects: bool,
        ridge_lambda: float | None,
        real_length: int,
    ) -> None:
        t = treated.size
        post = np.zeros(t, dtype=bool)
        post[t - duration :] = True
        # With fixed effects the treated mean absorbs duration / T of an effect in a T-day panel; the real
        # test will run on real_length days (the whole history and the test), not on the t of this cut.
        self._signal_scale = (1.0 - duration / real_length) / (1.0 - duration / t) if fixed_effects else 1.0
        level = donor_level(donors)
        self._refit = LinearRefit(
            treated, donors, treated * post, fixed_effects=fixed_effects, ridge_lambda=ridge_lambda, level=level
        )
        self._start = t - duration
        self._duration = duration
        self._alpha = alpha
        self._side: Side = side
        self._noise = block_sums(self._refit.residuals(np.zeros(1))[0], self._start, duration)
        self._paths: FloatArray | None = None
        self._scales = scale_nodes(scale_degrees_of_freedom(t, duration))

    def power(self, effects: FloatArray) -> tuple[FloatArray, FloatArray]:
        """``(power, real decision)`` for each effect: the predictive power of the test to come (signal scaled to
        its length, :func:`noise_rotation_power` over the rotations of the no-effect residuals averaged over the
        noise scale's :func:`scale_nodes`) and the test on this window as it is (:func:`block_test_rejects`)."""
        blocks = block_sums(self._refit.residuals(effects), self._start, self._duration)
        signal = self._signal_scale * (blocks - self._noise[None, :])
        if self._paths is None:
            self._paths = np.asarray(self._noise[_shifts(self._noise.size)], dtype=np.float64)
        power = np.zeros(signal.shape[0])
        for w in self._scales:
            power += noise_rotation_power(self._paths, w * signal, self._alpha, self._side)[0]
        return power / self._scales.size, block_test_rejects(blocks, self._alpha, self._side)


def _mean_power(tests: Sequence[WindowTest], effects: FloatArray) -> tuple[FloatArray, FloatArray]:
    power = np.zeros(effects.size)
    detected = np.zeros(effects.size)
    for test in tests:
        p, real = test.power(effects)
        power += p
        detected += real
    return power / len(tests), detected / len(tests)


def _exact_mde(
    tests: Sequence[WindowTest], inside: float, outside: float, power_target: float, tolerance: float
) -> float:
    """Bisect between a grid effect whose power reaches the target (``inside``) and a smaller one that does not,
    until they are ``tolerance`` apart (at most 30 steps)."""
    steps = min(30, max(1, int(np.ceil(np.log2(max(abs(inside - outside), tolerance) / tolerance)))))
    for _ in range(steps):
        middle = 0.5 * (inside + outside)
        if _mean_power(tests, np.array([middle]))[0][0] >= power_target - 1e-12:
            inside = middle
        else:
            outside = middle
    return inside


def pre_period_fit(
    treated: FloatArray, donors: FloatArray, duration: int, fixed_effects: bool, ridge_lambda: float | None
) -> tuple[float, float, float | None]:
    """``(pre_rmse, scaled L2 imbalance, lift at zero)`` of the fit on the days before the last window."""
    t = treated.size
    pre = slice(0, t - duration)
    post = slice(t - duration, t)
    fit: SyntheticControlFit | AugmentedSyntheticControlFit
    if ridge_lambda is None:
        fit = fit_synthetic_control(treated[pre], donors[pre], fixed_effects=fixed_effects)
    else:
        fit = fit_augmented_synthetic_control(
            treated[pre], donors[pre], fixed_effects=fixed_effects, ridge_lambda=ridge_lambda
        )
    counterfactual = fit.predict(donors)
    residuals = treated - counterfactual
    total = float(counterfactual[post].sum())
    lift = float(residuals[post].sum() / total) if total > 0.0 else None
    rmse = float(np.sqrt(np.mean(residuals[pre] ** 2)))
    return rmse, float(fit.scaled_l2_imbalance), lift


def duration_power(
    treated_markets: FloatArray,
    donors: FloatArray,
    duration: int,
    effects: Sequence[float],
    *,
    lookback_windows: int = 1,
    alpha: float = 0.1,
    side: Side = "two-sided",
    power_target: float = 0.8,
    fixed_effects: bool = True,
    ridge_lambda: float | None = None,
    cost_per_kpi: float | None = None,
    exact_tolerance: float = 1e-4,
    progress: Callable[[float], None] | None = None,
) -> DurationPower:
    """Simulated power of a design for one test length (see the module docstring).

    ``treated_markets`` ``(n, T)`` holds the treated markets' KPI over the history, ``donors``
    ``(T, J)`` the control markets'.  The windows are the last ``lookback_windows`` stretches of
    ``duration`` days, each one day earlier than the next (GeoLift's ``lookback_window``).
    """
    y_markets = np.atleast_2d(np.asarray(treated_markets, dtype=np.float64))
    b = np.asarray(donors, dtype=np.float64)
    check_magnitude(y_markets, "dataset")
    check_magnitude(b, "dataset")
    check_magnitude(effects, "effect_sizes")
    grid = np.asarray(effects, dtype=np.float64)
    n_periods = y_markets.shape[1]
    if duration < 1 or lookback_windows < 1:
        raise InvalidProblem("durations", "must be at least 1 day, with at least 1 lookback window")
    if n_periods - duration - lookback_windows + 1 < max(duration, 2):
        raise InvalidProblem(
            "durations",
            f"{duration} days with {lookback_windows} lookback windows needs at least "
            f"{2 * duration + lookback_windows - 1} days of history (as many before each window as in it); "
            f"the history has {n_periods}",
        )
    y = y_markets.mean(axis=0)
    tests = []
    for window in range(lookback_windows):
        end = n_periods - window
        tests.append(
            WindowTest(y[:end], b[:end], duration, alpha, side, fixed_effects, ridge_lambda, n_periods + duration)
        )
        if progress is not None:
            progress(0.5 * (window + 1) / lookback_windows)
    power, detected = _mean_power(tests, grid)
    mde, power_at_mde = minimum_detectable_effect(grid.tolist(), power.tolist(), power_target)
    mde_exact = None
    if mde is not None:
        smaller = [e for e in grid.tolist() if 0.0 <= e * np.sign(mde) < abs(mde)]
        nearest = max(smaller, key=abs, default=0.0)
        mde_exact = _exact_mde(tests, mde, nearest, power_target, exact_tolerance)
    if progress is not None:
        progress(1.0)
    treated_kpi = float(y_markets[:, n_periods - duration :].sum())
    investment = None
    if mde is not None and cost_per_kpi is not None:
        investment = float(cost_per_kpi * treated_kpi * abs(mde))
    pre_rmse, imbalance, lift_at_zero = pre_period_fit(y, b, duration, fixed_effects, ridge_lambda)
    return DurationPower(
        duration=duration,
        windows=lookback_windows,
        effects=tuple(float(e) for e in grid),
        power=tuple(float(v) for v in power),
        detected=tuple(float(v) for v in detected),
        mde=mde,
        mde_exact=mde_exact,
        power_at_mde=power_at_mde,
        investment=investment,
        treated_kpi=treated_kpi,
        pre_rmse=pre_rmse,
        scaled_l2_imbalance=imbalance,
        lift_at_zero=lift_at_zero,
    )
