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

and ``power(e)`` averages ``power_w`` over the ``L`` windows.  ``r = 0`` is the real test on the real
window.  One correction for the test to come: the window's panel has ``T`` days, the real test will have
the whole history and the test (``T_h + d``), and with unit fixed effects the treated mean absorbs
``d / T`` of an effect, so the signal is scaled by ``(1 - d / (T_h + d)) / (1 - d / T)`` (without it the
prediction was 3-5 points low for 21-day tests on 110-day histories in the simulation of
``tests/stats/test_geo_power.py``; with it the gaps were within +-2.5 points).

Only the noise is shifted, not the fit's systematic misfit.  When the markets trend, the simplex weights match the
treated market's level only up to an attenuation (the donors' noise pulls them toward a combination about 8% too
small), and the residuals then carry a slow drift that follows the markets' level: in the process of issue 23 with
growth (180-day histories, 21 markets, one treated; measured before the test ran on the deflated panel, which
divides a shared growth out and leaves the drift only where the treated level moves apart from the donors') the
mean residual sum over the last 15 days was +0.17 of a day's treated KPI against -0.17 over the first 15.  The
drift sits on the test days in every future, so shifting it away with the noise made the power 6-10 points
pessimistic for positive effects (and optimistic for negative ones).  The drift is ``d = beta z`` with ``z`` the
synthetic control's level (the fitted deflated series averaged over a centred week, so the weekly pattern does not
count, then demeaned) and ``beta`` fitted on the window's pre-period alone (so the test days' own noise does not
enter it, which would double it); the noise paths are ``d_t + (u^0 - d)_{t+r}`` (:func:`level_drift`,
:meth:`WindowTest.noise_paths`).  Without a trend ``beta`` is about 0 and the paths are the plain rotations.  At
``e = 0`` the power is ``#{r : p_r <= alpha} / T``: at most ``alpha`` by construction without drift, and with one
the rate at which the drift makes the test reject without an effect.  The paths' block sums are the drift's block
sums plus the rest's shifted, so all ``T`` noise paths cost one ``T x T`` comparison per effect size.

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
    "level_drift",
    "minimum_detectable_effect",
    "noise_rotation_power",
    "pre_period_fit",
]

# Relative tolerance for "S_k >= S_0" (ties count as at least as extreme, as in stats.geo.conformal).
_TIE_RTOL = 1e-10


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
    ``r``-th noise path (:meth:`WindowTest.noise_paths`); ``signal_blocks`` ``(E, T)`` are those of the
    residual change each effect causes; block ``0`` is the test period.  With path ``r`` the statistic of
    block ``k`` is ``noise[r, k] + signal[k]``; the test rejects when at most ``alpha T`` blocks are at least
    as extreme as block ``0``.  ``power`` is the share of the ``T`` paths that reject, ``real`` the decision
    on path ``0`` (1.0 or 0.0).
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


def level_drift(residuals: FloatArray, fitted: FloatArray, pre_periods: int) -> FloatArray:
    """The residuals' drift with the synthetic control's level (module docstring): ``beta z_t``.

    ``z`` is ``fitted`` ``(T,)`` averaged over a centred 7-day window (fewer days at the ends), demeaned;
    ``beta`` is the least-squares coefficient of ``residuals`` on ``z`` over the first ``pre_periods``
    periods.
    """
    u = np.asarray(residuals, dtype=np.float64)
    week = np.ones(7)
    z = np.convolve(fitted, week, mode="same") / np.convolve(np.ones(u.size), week, mode="same")
    z = z - z.mean()
    pre = slice(0, pre_periods)
    denominator = float(z[pre] @ z[pre])
    if not denominator > 1e-300:
        return np.zeros(u.size)
    return np.asarray(float(z[pre] @ u[pre]) / denominator * z, dtype=np.float64)


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
        residuals = self._refit.residuals(np.zeros(1))[0]
        self._noise = block_sums(residuals, self._start, duration)
        self._drift = level_drift(residuals, treated / level - residuals, t - duration)
        self._residuals = residuals
        self._paths: FloatArray | None = None

    def noise_paths(self) -> FloatArray:
        """``(T, T)``: row ``r`` holds the block sums of the ``r``-th noise path ``d_t + (u^0 - d)_{t+r}``
        (the drift ``d`` of :func:`level_drift` kept in place, the rest shifted)."""
        t = self._residuals.size
        drift = block_sums(self._drift, self._start, self._duration)
        rest = block_sums(self._residuals - self._drift, self._start, self._duration)
        return np.asarray(drift[None, :] + rest[_shifts(t)], dtype=np.float64)

    def power(self, effects: FloatArray) -> tuple[FloatArray, FloatArray]:
        """``(power, real decision)`` for each effect: the power of the test to come (signal scaled to its
        length, :func:`noise_rotation_power` over :meth:`noise_paths`) and the test on this window as it is
        (:func:`block_test_rejects`)."""
        blocks = block_sums(self._refit.residuals(effects), self._start, self._duration)
        signal = self._signal_scale * (blocks - self._noise[None, :])
        if self._paths is None:
            self._paths = self.noise_paths()
        power, _ = noise_rotation_power(self._paths, signal, self._alpha, self._side)
        return power, block_test_rejects(blocks, self._alpha, self._side)


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
