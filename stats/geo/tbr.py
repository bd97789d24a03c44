"""Time-Based Regression (TBR) for geo experiments.

Follows Kerman, Wang & Vaver (2017), "Estimating ad effectiveness using geo experiments in a
time-based regression framework" (Google), as implemented in Google's ``matched_markets``
package (``methodology/tbr.py``, ``tbr_iroas.py``), with an interval that stays valid when the
daily residuals are serially correlated (Chernozhukov, Wüthrich & Zhu 2021, below).

Model. Over the pre-period (``T0`` days) the treated group's aggregate response is regressed on
the control group's aggregate response,

    y_t = a + b * x_t + e_t,

and the fitted line predicts the counterfactual ``yhat_t = a_hat + b_hat * x_t`` over the ``d``
test days. The cumulative causal effect is ``Delta = sum_test (y_t - yhat_t)``; this point estimate
is the same for both interval methods.

Interval kinds (:data:`TBRIntervalKind`).

``"kerman"`` -- the paper's exact predictive interval (its eqn. 5), valid for iid normal ``e_t``.
With ``theta_hat - theta ~ N(0, sigma^2 (X'X)^-1)`` independent of the test-period noise,
``Delta_hat - Delta = sum e_t - s' (theta_hat - theta)`` with ``s = (d, sum_test x_t)``, so

    Var(Delta_hat) = sigma^2 * (d + s' (X'X)^-1 s)
                   = sigma^2 * (d + d^2 / T0 + (sum_test (x_t - xbar_pre))^2 / Sxx),

``Sxx = sum_pre (x_t - xbar_pre)^2``, ``sigma^2 = SSE / (T0 - 2)``, and the standardized effect is
t with ``T0 - 2`` degrees of freedom. This reproduces matched_markets / the R TBR package exactly.

``"conformal"`` (the default) -- the moving-block conformal test of Chernozhukov, Wüthrich & Zhu
(2021, JASA 116(536)), the test :mod:`stats.geo.conformal` uses for the synthetic controls, applied to
TBR's regression with a statistic built for the estimate. Number the ``T = T0 + d`` analysed days
``0..T-1`` (pre-period, then the test days) and let ``W_k`` be the ``T`` cyclic windows of ``d``
consecutive days starting at day ``T0 + k (mod T)`` (``W_0`` is the test period). To test ``H0:
Delta = theta`` (a constant ``theta / d`` per test day):

1. subtract ``theta / d`` from the treated test days; for each window, fit ``y_t = a + b x_t`` by
   OLS on the ``T - d`` days outside it and sum its prediction errors over the window,
   ``R_k(theta)``. Outside ``W_0`` lies exactly the pre-period, so ``R_0(theta) = Delta_hat -
   theta``: the test window's statistic is the estimate's own;
2. scale by the window's control level and studentize, ``S_k(theta) = |R_k(theta)| / (c_k sqrt(q_k))``
   with ``c_k = sum_{W_k} x_t`` (``c_k = 1`` for every window when some ``c_k <= 0``) and

       q_k = d + d^2 / n + (sum_{W_k} (x_t - xbar_k))^2 / Sxx_k,

   ``n = T - d`` and ``xbar_k``, ``Sxx_k`` of the control outside ``W_k``: the variance of a window
   sum's prediction error in units of the residual variance (the factor of ``"kerman"``'s variance
   above, for the fit without the window; neither scale depends on ``theta``). The level makes noise
   that grows with it (trending markets) comparable across the history; ``q_k`` makes the windows'
   prediction errors comparable: the test window is an extrapolation of the line, its control on a
   growing series far from the fit's mean (and the slope, fitted on the noisy control total,
   attenuated), so its errors vary more than those of windows inside the fitted range, and without
   ``q_k`` the test over-rejected there (below). Studentizing keeps the permutations closer to
   exchangeable; it is not what makes the test valid (any statistic is, next paragraph);
3. ``p(theta) = #{k : S_k >= S_0} / T`` (two-sided); ``p_one(theta) = #{k : s_k >= s_0} / T`` with
   the signed ``s_k = R_k / (c_k sqrt(q_k))`` (one-sided, ``H1: Delta > theta``).

``S_0(theta)`` is ``S`` of the data, ``S_k`` the same function of the data shifted cyclically by ``k``
days, so the test is exact when the series (under H0) is exchangeable under cyclic shifts and
asymptotically valid for stationary, weakly dependent series (the paper's Theorems 1 and 2, which hold for
any statistic): a cyclic shift moves a block of ``d`` consecutive days and keeps their serial
dependence. The interval inverts the same test, ``CI = {theta : p(theta) > alpha}``, exactly: each
``R_k`` is affine in ``theta``, so ``S_k(theta) = |a_k - theta b_k|`` and ``S_k >= S_0`` holds on
the closed interval between ``(a_0 - a_k) / (b_0 - b_k)`` and ``(a_0 + a_k) / (b_0 + b_k)`` when
``|b_k| < b_0`` (the usual case: ``W_0`` is where the test-day indicator's mass lies). All these
intervals contain ``a_0 / b_0 = Delta_hat``, where ``S_0 = 0`` and ``p = 1``, so the estimate is
always accepted, the accepted set is an interval around it and the CI excludes 0 exactly when
``p_value <= alpha``. Otherwise the set can be unbounded (``ci_status = "unbounded"``, the side
``None``) or have gaps (``"non_convex"``, reported as its hull, which still contains the estimate). The
p-value is a multiple of ``1 / T``: a two-sided bound is finite only when ``1 / T <= alpha`` (``T >=
20`` days at 95%, ``T >= 100`` at 99%). The per-day counterfactual band inverts the one-day test on the
pre-period plus that day (``T0 + 1`` windows of one day; it contains the counterfactual), the cumulative
band the test on the pre-period plus the first ``j`` test days; its last entry is the ``incremental``
interval. (Until issue 23 the residuals came from one OLS fit on all ``T`` days: the interval was
centred on that fit's effect, not on ``Delta_hat`` -- on matched_markets' example 147,337 with an 80%
interval of [125,758, 144,553], now [132,335, 285,235] -- and, unscaled, the test rejected 15.0% of null
tests on a 365-day history growing 0.3% a day.)

Why conformal by default (calibration). The panels of ``tests/stats/test_tbr_calibration.py``
(same seeds): 20 markets with lognormal levels, a shared AR(0.9) trend with market loadings, a
weekly pattern with market amplitudes, AR(1) market noise with rho in {0, 0.25, 0.5}; 1, 3 or 10
treated markets; a +5% multiplicative effect; 2,000 replications per cell; designs ``T0 = 84,
d = 28`` and ``T0 = 56, d = 14`` (18 cells). Coverage of the true cumulative effect by the 95%
interval, lowest - highest over the cells:

* ``"kerman"`` (iid): 0.728 - 0.940; 0.73 - 0.77 at rho = 0.5, and 0.89 with 10 treated markets
  even at rho = 0, where the treated and control trend loadings differ and leave a persistent
  residual;
* (a) AR(1) predictive variance -- rho from the pre-period residuals' lag-1 autocorrelation with
  the ``(1 + 3 rho) / T0`` bias correction, ``Var(Delta_hat - Delta) = w' Sigma(rho) w`` for the
  exact weights ``w`` of the errors on all days (the test-period sum, the parameter term and their
  covariance; ``Sigma_ij = gamma_0 rho^|i-j|``, ``gamma_0 = SSE / tr(M R(rho))``), t with
  ``T0 - 2`` df: 0.913 - 0.952 -- the residuals are not AR(1) (trend mismatch plus market noise),
  so one coefficient under-states their long-run variance;
* (b) HAC / Newey-West (Bartlett kernel, bandwidth ``floor(4 (T0/100)^(2/9))``) applied to the
  same weights: 0.858 - 0.927 -- the usual small-sample downward bias of kernel long-run variances;
* Kerman when the lag-1 autocorrelation is not significant (``r1 sqrt(T0) < 1.96``), conformal
  otherwise: 0.899 - 0.955 -- the pre-test misses much of the dependence that matters;
* (c) ``"conformal"``: 0.941 - 0.959, with false-positive rates (no effect, alpha = 5%) of
  0.044 - 0.060 two-sided and 0.038 - 0.056 one-sided, the median interval width within 2% of the
  unstudentized test's in every cell (held out and level-scaled, not studentized: 0.940 - 0.958,
  0.049 - 0.068 and 0.042 - 0.058; the all-days residuals of the version before issue 23: 0.945 -
  0.961, 0.039 - 0.060 and 0.039 - 0.058). On issue 23's trending process
  (``bench/calibrate_geo_false_positives.py``: 0.3% a day of growth, noise proportional to the level,
  2,000 null tests) it rejects 4.3%, 4.2% and 3.5% at 90, 180 and 365 pre-period days (without
  growth 5.1%, 4.1%, 4.6%), and with 3 treated markets 5.8%, 5.5% and 4.5% (without growth 6.1%,
  4.8%, 5.1%: the one row a tenth of a point above alpha + 1, within its standard error of 0.5). Not
  studentized it rejected 5.9%, 5.7%, 4.5% (5.1%, 4.1%, 4.3%) and with 3 treated markets 8.4%, 7.5%,
  5.3% (6.2%, 4.6% at 90 and 180 days); the unscaled all-days test 5.2%, 7.7% and 15.0%. There the
  studentized 95% interval is wider than the unstudentized one by a median of 7 - 10% per test (500
  tests at 90 and 365 days, 1 and 3 treated): the extrapolation to the test window is priced in.

Only (c) meets +-2 pp in every cell, so it is the default, and the only robust method kept; the
method is an explicit choice, never switched by a test of the residuals (the pre-test row above).
``"kerman"`` stays available: exact (and narrower) when the residuals really are iid, and what
matched_markets publishes. Limitations of ``"conformal"``: the p-value is at least ``1 / T``; the
null is a constant daily effect; the interval need not be symmetric around ``Delta_hat`` (windows that
share test days with ``W_0`` bound it, unevenly when the test period is long against the pre-period);
the cyclic windows that wrap from the
test period to the start of the pre-period assume the residuals are stationary over the whole span.

Diagnostics. ``TBRFit.residual_autocorrelation`` is the lag-1 autocorrelation of the pre-period
residuals, ``r1 = sum_t e_t e_{t-1} / sum_t e_t^2``; its null standard error is about
``1 / sqrt(T0)``. ``TBRResult.warnings`` flags it: under ``"kerman"`` whenever it is significantly positive
at 5% (the iid interval is then too narrow), under ``"conformal"`` when it exceeds
:data:`STRONG_AUTOCORRELATION` (beyond the dependence the default was calibrated on).

Everything is numpy/scipy; nothing here knows about HTTP or storage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt
from scipy import stats

from stats.errors import InvalidProblem
from stats.geo.tbr_conformal import (
    Inversion,
    accepted_set_is_interval,
    conformal_bands,
    held_out_window_sums,
    invert,
)
from stats.intervals import Interval
from stats.magnitude import check_magnitude

FloatArray = npt.NDArray[np.float64]
TBRIntervalKind = Literal["conformal", "kerman"]
TBRCiStatus = Literal["interval", "non_convex", "unbounded", "could_not_be_built"]

__all__ = [
    "STRONG_AUTOCORRELATION",
    "TBR_INTERVAL_KINDS",
    "TBRCiStatus",
    "TBRConformalBatch",
    "TBRFit",
    "TBRIntervalKind",
    "TBROneSided",
    "TBRResult",
    "TBRSeries",
    "estimate_tbr",
    "tbr_conformal_batch",
    "tbr_effect_batch",
]

TBR_INTERVAL_KINDS: tuple[TBRIntervalKind, ...] = ("conformal", "kerman")
# Lag-1 residual autocorrelation above which a conformal result is flagged: the default interval was
# calibrated on residuals up to about this dependence (see the module docstring).
STRONG_AUTOCORRELATION = 0.5


@dataclass(frozen=True)
class TBRFit:
    """The pre-period regression ``treated_t = intercept + slope * control_t``.

    ``sigma`` is the residual standard error ``sqrt(SSE / df)`` used for inference; ``rmse`` is the
    in-sample ``sqrt(SSE / n_pre)``; ``df = n_pre - 2``. ``r_squared`` is NaN when the treated
    pre-period series is constant. ``residual_autocorrelation`` is the lag-1 autocorrelation of the
    pre-period residuals ``sum e_t e_{t-1} / sum e_t^2`` (NaN for a perfect fit).
    """

    intercept: float
    slope: float
    sigma: float
    df: int
    rmse: float
    r_squared: float
    n_pre: int
    residual_autocorrelation: float


@dataclass(frozen=True, eq=False)
class TBRSeries:
    """Per-day series (read-only arrays).

    Test period (one entry per test day): ``observed`` treated response, ``counterfactual``
    prediction, ``ci_low``/``ci_high`` the pointwise band of the counterfactual at the result's
    two-sided confidence level, ``effect = observed - counterfactual``, and the running sum
    ``cumulative_effect`` with its band ``cumulative_ci_low``/``cumulative_ci_high`` (the last
    entry is the result's ``incremental`` interval). Under ``"kerman"`` the pointwise band is
    ``yhat_t -+ t * sigma * sqrt(1 + 1/T0 + (x_t - xbar)^2 / Sxx)``; under ``"conformal"`` it
    inverts the one-day test (see the module docstring), and an unbounded side is NaN.
    Pre-period: ``pre_observed`` and the in-sample ``pre_fitted``.
    """

    observed: FloatArray
    counterfactual: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    effect: FloatArray
    cumulative_effect: FloatArray
    cumulative_ci_low: FloatArray
    cumulative_ci_high: FloatArray
    pre_observed: FloatArray
    pre_fitted: FloatArray


@dataclass(frozen=True)
class TBROneSided:
    """The one-sided analysis of Kerman et al. / matched_markets (``tails=1``).

    ``p_value`` tests H0: Delta <= 0 against H1: Delta > 0 (so under ``"kerman"`` ``1 - p_value``
    is the paper's posterior probability ``P(Delta > 0)``). The intervals are the one-sided
    intervals at the result's confidence level, ``[lower, +inf)`` (``"kerman"``: ``Delta_hat -
    t_{level, df} * se``; ``"conformal"``: the inverted one-sided test), mapped like the two-sided
    ones; an unbounded side is ``None``. For a negative ``incremental_cost`` the iROAS bound becomes
    an upper bound (``ci_high``).
    """

    p_value: float
    incremental: Interval
    relative: Interval
    iroas: Interval | None


@dataclass(frozen=True)
class TBRResult:
    """Outcome of :func:`estimate_tbr`.

    * ``method``: the interval method (:data:`TBRIntervalKind`, see the module docstring).
    * ``incremental``: cumulative effect Delta over the test days (the same point estimate for both
      methods), two-sided CI at ``confidence_level``. ``standard_error`` is Kerman's iid
      predictive standard error of it, reported for both methods (under ``"conformal"`` it does
      not set the interval, which may be wider when the residuals are serially correlated).
    * ``att``: ``incremental / (n_test_days * n_treated_geos)``, the average effect per treated
      geo and test day (same CI, scaled).
    * ``relative``: ``Delta / counterfactual_total`` with ``counterfactual_total = observed_total -
      Delta_hat``; its CI maps the bounds of Delta through the increasing map ``d -> d /
      (observed_total - d)`` (what matched_markets' simulated quantiles converge to). A bound is
      ``None`` where the map is undefined (``d >= observed_total``) or the bound of Delta is; the
      estimate is NaN if the counterfactual total is not positive.
    * ``p_value``: two-sided, from the same test as the CI, so the CI excludes 0 exactly when
      ``p_value`` is below ``1 - confidence_level`` (``"kerman"``, continuous) or at most it
      (``"conformal"``, a multiple of ``1 / T``).
    * ``iroas``: ``Delta / incremental_cost`` with the CI of Delta divided by the (fixed, known)
      incremental cost — matched_markets' fixed-cost scenario; ``None`` without a cost.
    * ``ci_status``: how the two-sided interval of ``incremental`` (and so of ``att``, ``relative``
      and ``iroas``) was built. ``"interval"``: the set of effects the test accepts, bounded, with the
      estimate inside (always under ``"kerman"``); ``"non_convex"``: that set has gaps and the interval
      is its hull; ``"unbounded"``: the test accepts arbitrarily large effects on a side, reported as
      ``None`` (too few analysed days for the level, or windows as sensitive to the effect as the test
      window); ``"could_not_be_built"``: no interval around the estimate came out of the inversion, so
      both bounds are ``None`` -- never an interval that excludes its estimate.
    * ``warnings``: plain-language cautions (strong residual autocorrelation, an unbounded, non-convex
      or unbuilt interval).
    """

    method: TBRIntervalKind
    incremental: Interval
    att: Interval
    relative: Interval
    p_value: float
    ci_status: TBRCiStatus
    standard_error: float
    iroas: Interval | None
    one_sided: TBROneSided
    fit: TBRFit
    series: TBRSeries
    confidence_level: float
    n_test_days: int
    n_treated_geos: int
    observed_total: float
    counterfactual_total: float
    incremental_cost: float | None
    warnings: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class TBRConformalBatch:
    """:func:`tbr_conformal_batch` for a stack of ``R`` problems: arrays of shape ``(R,)``.

    ``estimate`` is the cumulative effect Delta_hat (pre-period fit), ``ci_low``/``ci_high`` the
    two-sided conformal interval (NaN where unbounded), ``p_value`` the two-sided p-value of
    ``Delta = 0``, ``one_sided_p_value`` that of ``Delta <= 0`` against ``Delta > 0``, and
    ``residual_autocorrelation`` the lag-1 autocorrelation of the pre-period residuals.
    """

    estimate: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    p_value: FloatArray
    one_sided_p_value: FloatArray
    residual_autocorrelation: FloatArray


class _Windows(NamedTuple):
    pre: slice
    post: slice
    n_pre: int
    n_post: int


class _PreFit(NamedTuple):
    """Vectorized pre-period fit; every array has a leading replication axis."""

    intercept: FloatArray
    slope: FloatArray
    x_mean: FloatArray
    sxx: FloatArray
    sse: FloatArray
    sst: FloatArray
    sigma: FloatArray
    lag1: FloatArray
    df: int


def _windows(pre_slice: slice, post_slice: slice, length: int) -> _Windows:
    """Normalize the two slices to unit-step windows inside ``[0, length)`` and check them."""
    normalized: list[slice] = []
    for name, window in (("pre_slice", pre_slice), ("post_slice", post_slice)):
        if not isinstance(window, slice):
            raise InvalidProblem(name, "must be a slice of day positions")
        start, stop, step = window.indices(length)
        if step != 1:
            raise InvalidProblem(name, "must be a contiguous range of days (step 1)")
        normalized.append(slice(start, max(start, stop)))
    pre, post = normalized
    n_pre = pre.stop - pre.start
    n_post = post.stop - post.start
    if n_pre < 3:
        raise InvalidProblem("pre_slice", f"needs at least 3 days to fit the regression, got {n_pre}")
    if n_post < 1:
        raise InvalidProblem("post_slice", "selects no test days")
    if post.start < pre.stop:
        raise InvalidProblem("post_slice", "must start after the pre-period ends")
    return _Windows(pre, post, n_pre, n_post)


def _fit_pre(treated: FloatArray, control: FloatArray, windows: _Windows) -> _PreFit:
    """OLS of treated on control over the pre-period, in centered form, for each row."""
    x = control[:, windows.pre]
    y = treated[:, windows.pre]
    x_mean = x.mean(axis=1)
    y_mean = y.mean(axis=1)
    xc = x - x_mean[:, None]
    yc = y - y_mean[:, None]
    sxx = np.einsum("rt,rt->r", xc, xc)
    sxy = np.einsum("rt,rt->r", xc, yc)
    sst = np.einsum("rt,rt->r", yc, yc)
    slope = sxy / sxx
    intercept = y_mean - slope * x_mean
    resid = yc - slope[:, None] * xc
    sse = np.einsum("rt,rt->r", resid, resid)
    df = windows.n_pre - 2
    sigma = np.sqrt(sse / df)
    lagged = np.einsum("rt,rt->r", resid[:, 1:], resid[:, :-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        lag1 = np.where(sse > 0, lagged / np.where(sse > 0, sse, 1.0), np.nan)
    return _PreFit(intercept, slope, x_mean, sxx, sse, sst, sigma, lag1, df)


def _as_panel(values: npt.ArrayLike, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise InvalidProblem(name, "must be a series (1-D) or a stack of series (2-D)")
    return array


def _checked_inputs(
    treated: npt.ArrayLike, control: npt.ArrayLike, pre_slice: slice, post_slice: slice
) -> tuple[FloatArray, FloatArray, _Windows]:
    y = _as_panel(treated, "treated")
    x = _as_panel(control, "control")
    if y.shape != x.shape:
        raise InvalidProblem("control", f"has shape {x.shape} but treated has shape {y.shape}; they must match")
    windows = _windows(pre_slice, post_slice, y.shape[1])
    for name, array in (("treated", y), ("control", x)):
        for label, window in (("pre-period", windows.pre), ("test period", windows.post)):
            if not np.isfinite(array[:, window]).all():
                raise InvalidProblem(name, f"has missing or non-finite values in the {label}")
        check_magnitude(array[:, windows.pre], name)
        check_magnitude(array[:, windows.post], name)
    sxx = np.var(x[:, windows.pre], axis=1)
    if not (sxx > 0).all():
        raise InvalidProblem("control", "is constant over the pre-period; the slope is undefined")
    return y, x, windows


def _effect_and_se(
    treated: FloatArray, control: FloatArray, windows: _Windows, fit: _PreFit
) -> tuple[FloatArray, FloatArray]:
    x_post = control[:, windows.post]
    counterfactual = fit.intercept[:, None] + fit.slope[:, None] * x_post
    delta = (treated[:, windows.post] - counterfactual).sum(axis=1)
    n = windows.n_post
    lever = (x_post - fit.x_mean[:, None]).sum(axis=1)
    variance_factor = n + n * n / windows.n_pre + lever * lever / fit.sxx
    return delta, fit.sigma * np.sqrt(variance_factor)


def tbr_effect_batch(
    treated: npt.ArrayLike,
    control: npt.ArrayLike,
    pre_slice: slice,
    post_slice: slice,
) -> tuple[FloatArray, FloatArray, int]:
    """Cumulative TBR effect and Kerman's iid standard error for a stack of problems, for simulation.

    ``treated`` and ``control`` are ``(R, T)`` (or ``(T,)``); returns ``(delta, standard_error,
    df)`` with ``delta`` and ``standard_error`` of shape ``(R,)``: the same numbers
    :func:`estimate_tbr` reports as ``incremental.estimate`` and ``standard_error`` (its
    ``"kerman"`` interval is ``delta -+ t_df * standard_error``).
    """
    y, x, windows = _checked_inputs(treated, control, pre_slice, post_slice)
    fit = _fit_pre(y, x, windows)
    delta, se = _effect_and_se(y, x, windows, fit)
    return delta, se, fit.df


# --- the block-permutation conformal test (its inversion: stats.geo.tbr_conformal) ---------------------


def _window_sums(treated: FloatArray, control: FloatArray, windows: _Windows) -> tuple[FloatArray, FloatArray]:
    """The conformal test's window sums over the analysed days (pre-period then test days) of each row."""
    y = np.concatenate([treated[:, windows.pre], treated[:, windows.post]], axis=1)
    x = np.concatenate([control[:, windows.pre], control[:, windows.post]], axis=1)
    return held_out_window_sums(y, x, windows.n_post)


def _conformal(treated: FloatArray, control: FloatArray, windows: _Windows, alpha: float) -> Inversion:
    """The conformal test of ``Delta`` inverted for each row."""
    return invert(*_window_sums(treated, control, windows), alpha)


def tbr_conformal_batch(
    treated: npt.ArrayLike,
    control: npt.ArrayLike,
    pre_slice: slice,
    post_slice: slice,
    confidence_level: float,
) -> TBRConformalBatch:
    """The ``"conformal"`` TBR analysis of a stack of independent problems, for simulation.

    ``treated`` and ``control`` are ``(R, T)`` (or ``(T,)``); the arrays are the numbers
    :func:`estimate_tbr` reports (``incremental``, ``p_value``, ``one_sided.p_value``,
    ``fit.residual_autocorrelation``) with ``method="conformal"``.
    """
    if not 0.0 < confidence_level < 1.0:
        raise InvalidProblem("confidence_level", "must lie strictly between 0 and 1")
    y, x, windows = _checked_inputs(treated, control, pre_slice, post_slice)
    fit = _fit_pre(y, x, windows)
    delta, _ = _effect_and_se(y, x, windows, fit)
    inversion = _conformal(y, x, windows, 1.0 - confidence_level)
    return TBRConformalBatch(
        estimate=delta,
        ci_low=inversion.ci_low,
        ci_high=inversion.ci_high,
        p_value=inversion.p_value,
        one_sided_p_value=inversion.one_sided_p_value,
        residual_autocorrelation=fit.lag1,
    )


# --- the single-problem analysis ------------------------------------------------------------------


def _p_values(estimate: float, se: float, df: int) -> tuple[float, float]:
    """Two-sided p-value and one-sided p-value for H1: effect > 0."""
    if se > 0:
        t_stat = estimate / se
        return float(2.0 * stats.t.sf(abs(t_stat), df)), float(stats.t.sf(t_stat, df))
    # A perfect pre-period fit: no noise, so any non-zero effect is certain.
    if estimate == 0:
        return 1.0, 1.0
    return 0.0, 0.0 if estimate > 0 else 1.0


def _relative(delta: float, low: float | None, high: float | None, observed_total: float) -> Interval:
    """Map ``d -> d / (observed_total - d)``, increasing wherever it is defined (``d < Y``)."""

    def ratio(d: float | None) -> float | None:
        if d is None or observed_total - d <= 0:
            return None
        return d / (observed_total - d)

    estimate = ratio(delta)
    if estimate is None:
        return Interval(estimate=float("nan"), ci_low=None, ci_high=None)
    return Interval(estimate=estimate, ci_low=ratio(low), ci_high=ratio(high))


def _divide(interval: Interval, divisor: float) -> Interval:
    """Scale an interval by ``1 / divisor``, swapping the bounds for a negative divisor; a finite figure
    that the division takes past the range of a double is refused (a cost too small for its response)."""
    low = None if interval.ci_low is None else interval.ci_low / divisor
    high = None if interval.ci_high is None else interval.ci_high / divisor
    for before, after in (
        (interval.estimate, interval.estimate / divisor),
        (interval.ci_low, low),
        (interval.ci_high, high),
    ):
        if before is not None and after is not None and np.isfinite(before) and not np.isfinite(after):
            raise InvalidProblem("incremental_cost", "is so small that the iROAS exceeds the range of a double")
    if divisor < 0:
        low, high = high, low
    return Interval(estimate=interval.estimate / divisor, ci_low=low, ci_high=high)


def _bound(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _read_only(array: FloatArray) -> FloatArray:
    array = np.array(array, dtype=np.float64)
    array.flags.writeable = False
    return array


class _Inference(NamedTuple):
    """What the chosen method adds to the point estimate: the two intervals, p-values and bands."""

    incremental: Interval
    ci_status: TBRCiStatus
    p_value: float
    one_sided: Interval
    one_sided_p_value: float
    point_low: FloatArray
    point_high: FloatArray
    cumulative_low: FloatArray
    cumulative_high: FloatArray


def _kerman_inference(
    delta: float,
    se: float,
    fit: _PreFit,
    windows: _Windows,
    x_post: FloatArray,
    counterfactual: FloatArray,
    cumulative: FloatArray,
    confidence_level: float,
) -> _Inference:
    df = fit.df
    sigma, x_mean, sxx = float(fit.sigma[0]), float(fit.x_mean[0]), float(fit.sxx[0])
    t_two = float(stats.t.ppf(0.5 + confidence_level / 2.0, df))
    t_one = float(stats.t.ppf(confidence_level, df))
    p_two, p_one = _p_values(delta, se, df)
    dev = x_post - x_mean
    point_se = sigma * np.sqrt(1.0 + 1.0 / windows.n_pre + dev * dev / sxx)
    k = np.arange(1, windows.n_post + 1, dtype=np.float64)
    cum_lever = np.cumsum(dev)
    cum_se = sigma * np.sqrt(k + k * k / windows.n_pre + cum_lever * cum_lever / sxx)
    return _Inference(
        incremental=Interval(estimate=delta, ci_low=delta - t_two * se, ci_high=delta + t_two * se),
        ci_status="interval",
        p_value=p_two,
        one_sided=Interval(estimate=delta, ci_low=delta - t_one * se, ci_high=None),
        one_sided_p_value=p_one,
        point_low=counterfactual - t_two * point_se,
        point_high=counterfactual + t_two * point_se,
        cumulative_low=cumulative - t_two * cum_se,
        cumulative_high=cumulative + t_two * cum_se,
    )


def _ci_status(delta: float, low: float, high: float, unbounded: bool, convex: bool) -> TBRCiStatus:
    """The status of a conformal interval ``[low, high]`` (NaN = unbounded side) around ``delta``."""
    if unbounded:
        return "unbounded"
    if not (np.isfinite(low) and np.isfinite(high) and low <= delta <= high):
        return "could_not_be_built"
    return "interval" if convex else "non_convex"


def _conformal_inference(
    delta: float, y: FloatArray, x: FloatArray, windows: _Windows, confidence_level: float
) -> _Inference:
    alpha = 1.0 - confidence_level
    a, b = _window_sums(y, x, windows)
    whole = invert(a, b, alpha)
    low, high = float(whole.ci_low[0]), float(whole.ci_high[0])
    unbounded = bool(np.isnan(low) or np.isnan(high))
    convex = unbounded or not (low <= delta <= high) or accepted_set_is_interval(a[0], b[0], alpha, low, high)
    status = _ci_status(delta, low, high, unbounded, convex)
    if status == "could_not_be_built":
        low, high = float("nan"), float("nan")
    y_pre, x_pre = y[0, windows.pre], x[0, windows.pre]
    y_post, x_post = y[0, windows.post], x[0, windows.post]
    day_low, day_high, cum_low, cum_high = conformal_bands(y_pre, x_pre, y_post, x_post, alpha)
    if status == "could_not_be_built":
        cum_low[-1], cum_high[-1] = low, high
    return _Inference(
        incremental=Interval(estimate=delta, ci_low=_bound(low), ci_high=_bound(high)),
        ci_status=status,
        p_value=float(whole.p_value[0]),
        one_sided=Interval(estimate=delta, ci_low=_bound(whole.one_sided_low[0]), ci_high=None),
        one_sided_p_value=float(whole.one_sided_p_value[0]),
        # The counterfactual of day t is y_t minus that day's effect.
        point_low=y_post - day_high,
        point_high=y_post - day_low,
        cumulative_low=cum_low,
        cumulative_high=cum_high,
    )


def _warnings(
    method: TBRIntervalKind, lag1: float, n_pre: int, n_days: int, inference: _Inference, confidence_level: float
) -> tuple[str, ...]:
    notes: list[str] = []
    critical = float(stats.norm.ppf(0.975)) / np.sqrt(n_pre)
    if method == "kerman" and np.isfinite(lag1) and lag1 > critical:
        notes.append(
            f"The pre-period residuals are serially correlated (lag-1 autocorrelation {lag1:.2f}, significant at 5% "
            f"over {n_pre} days); Kerman's interval assumes independent days and is then too narrow. The conformal "
            "method accounts for the correlation."
        )
    if method == "conformal" and np.isfinite(lag1) and abs(lag1) > STRONG_AUTOCORRELATION:
        notes.append(
            f"The pre-period residuals are strongly serially correlated (lag-1 autocorrelation {lag1:.2f}); the "
            f"block-permutation interval was calibrated up to {STRONG_AUTOCORRELATION:.1f} and may be too narrow "
            "beyond it. Control markets that track the treated ones more closely would help."
        )
    needed = int(np.ceil(1.0 / (1.0 - confidence_level) - 1e-9))
    if inference.ci_status == "unbounded" and n_days < needed:
        notes.append(
            f"With {n_days} analysed days the permutation test cannot reach a p-value below "
            f"{1.0 - confidence_level:.3g}, so the {confidence_level:.0%} interval is unbounded; it needs at "
            f"least {needed} days (pre-period plus test)."
        )
    elif inference.ci_status == "unbounded":
        notes.append(
            f"The {confidence_level:.0%} interval is unbounded: enough placements of the test window in the "
            "history respond to a hypothesised effect as strongly as the test window itself (a test period long "
            "against the pre-period); a longer pre-period bounds it."
        )
    elif inference.ci_status == "non_convex":
        notes.append("The set of effects the permutation test accepts has gaps; the interval reported is its hull.")
    elif inference.ci_status == "could_not_be_built":
        notes.append(
            "No interval around the estimate could be built from the permutation test (the inversion gave "
            "non-finite bounds); the interval is left out."
        )
    return tuple(notes)


def _check_options(method: str, confidence_level: float, n_treated_geos: int, incremental_cost: float | None) -> None:
    """Refuse an unknown method, a level outside (0, 1), a treated-geo count below 1 and a zero or non-finite cost."""
    if method not in TBR_INTERVAL_KINDS:
        raise InvalidProblem("method", f"must be one of {', '.join(TBR_INTERVAL_KINDS)}")
    if not 0.0 < confidence_level < 1.0:
        raise InvalidProblem("confidence_level", "must lie strictly between 0 and 1")
    if isinstance(n_treated_geos, bool) or not isinstance(n_treated_geos, (int, np.integer)):
        raise InvalidProblem("n_treated_geos", "must be a whole number")
    if n_treated_geos < 1:
        raise InvalidProblem("n_treated_geos", "must be at least 1")
    if incremental_cost is not None and (not np.isfinite(incremental_cost) or incremental_cost == 0):
        raise InvalidProblem("incremental_cost", "must be a finite, non-zero amount")


def _check_series(treated: npt.ArrayLike, control: npt.ArrayLike) -> None:
    """Refuse series that are not one-dimensional or not of the same length."""
    if np.ndim(treated) != 1:
        raise InvalidProblem("treated", "must be a one-dimensional daily series")
    if np.ndim(control) != 1:
        raise InvalidProblem("control", "must be a one-dimensional daily series")
    if np.shape(treated) != np.shape(control):
        raise InvalidProblem(
            "control",
            f"has {np.shape(control)[0]} days but treated has {np.shape(treated)[0]}; they must match",
        )


def _fit_summary(fit: _PreFit, n_pre: int) -> TBRFit:
    """The pre-period regression as reported: coefficients, residual spread, RMSE, R² and lag-1 autocorrelation."""
    sst = float(fit.sst[0])
    sse = float(fit.sse[0])
    return TBRFit(
        intercept=float(fit.intercept[0]),
        slope=float(fit.slope[0]),
        sigma=float(fit.sigma[0]),
        df=fit.df,
        rmse=float(np.sqrt(sse / n_pre)),
        r_squared=1.0 - sse / sst if sst > 0 else float("nan"),
        n_pre=n_pre,
        residual_autocorrelation=float(fit.lag1[0]),
    )


def _one_sided(
    inference: _Inference, delta: float, observed_total: float, incremental_cost: float | None
) -> TBROneSided:
    """The one-sided test of a positive effect, its lower bound mapped to relative lift and iROAS."""
    one_sided_incremental = inference.one_sided
    return TBROneSided(
        p_value=inference.one_sided_p_value,
        incremental=one_sided_incremental,
        relative=_relative(delta, one_sided_incremental.ci_low, None, observed_total),
        iroas=(None if incremental_cost is None else _divide(one_sided_incremental, incremental_cost)),
    )


class _Paths(NamedTuple):
    """The fitted line over the windows: observed and fitted pre-period, observed, counterfactual and effect after."""

    y_pre: FloatArray
    pre_fitted: FloatArray
    y_post: FloatArray
    x_post: FloatArray
    counterfactual: FloatArray
    effect: FloatArray
    cumulative: FloatArray


def _paths(y: FloatArray, x: FloatArray, windows: _Windows, fit: _PreFit) -> _Paths:
    """Apply the pre-period line to the control: fitted pre-period, counterfactual and (cumulative) effect."""
    intercept, slope = float(fit.intercept[0]), float(fit.slope[0])
    y_pre, x_pre = y[0, windows.pre], x[0, windows.pre]
    y_post, x_post = y[0, windows.post], x[0, windows.post]
    pre_fitted = intercept + slope * x_pre
    counterfactual = intercept + slope * x_post
    effect = y_post - counterfactual
    return _Paths(y_pre, pre_fitted, y_post, x_post, counterfactual, effect, np.cumsum(effect))


def _series(paths: _Paths, inference: _Inference) -> TBRSeries:
    """The read-only daily series of the result, with the inference's pointwise and cumulative bands."""
    return TBRSeries(
        observed=_read_only(paths.y_post),
        counterfactual=_read_only(paths.counterfactual),
        ci_low=_read_only(inference.point_low),
        ci_high=_read_only(inference.point_high),
        effect=_read_only(paths.effect),
        cumulative_effect=_read_only(paths.cumulative),
        cumulative_ci_low=_read_only(inference.cumulative_low),
        cumulative_ci_high=_read_only(inference.cumulative_high),
        pre_observed=_read_only(paths.y_pre),
        pre_fitted=_read_only(paths.pre_fitted),
    )


def estimate_tbr(
    treated: npt.ArrayLike,
    control: npt.ArrayLike,
    pre_slice: slice,
    post_slice: slice,
    confidence_level: float,
    incremental_cost: float | None = None,
    *,
    n_treated_geos: int = 1,
    method: TBRIntervalKind = "conformal",
) -> TBRResult:
    """Estimate the cumulative causal effect of a geo experiment by Time-Based Regression.

    ``treated`` and ``control`` are the daily aggregate responses of the treatment and control
    groups (shape ``(T,)``). ``pre_slice`` selects the pre-period used for the fit and
    ``post_slice`` the test days credited to the campaign (leave any cool-down out of it, or in,
    as the analysis requires); days outside both are ignored. ``incremental_cost`` is the
    treatment group's incremental spend over the test days (fixed-cost scenario); it adds the
    iROAS. ``n_treated_geos`` only scales ``att``. ``method`` chooses the interval and p-value:
    ``"conformal"`` (default; valid under serially correlated residuals) or ``"kerman"`` (the
    paper's exact interval for independent residuals, as matched_markets publishes); see the
    module docstring for why the default is not chosen by a test of the residuals.

    Raises :class:`~stats.errors.InvalidProblem` for unusable inputs (mismatched lengths, fewer than
    3 pre-period days, an empty or overlapping test window, missing values inside the windows, a
    constant control pre-period, a confidence level outside (0, 1), a zero or non-finite cost, an
    unknown method).
    """
    _check_options(method, confidence_level, n_treated_geos, incremental_cost)
    _check_series(treated, control)
    y, x, windows = _checked_inputs(treated, control, pre_slice, post_slice)
    fit = _fit_pre(y, x, windows)
    delta_arr, se_arr = _effect_and_se(y, x, windows, fit)
    delta, se = float(delta_arr[0]), float(se_arr[0])
    paths = _paths(y, x, windows, fit)
    n_pre, n_post = windows.n_pre, windows.n_post
    if method == "kerman":
        inference = _kerman_inference(
            delta, se, fit, windows, paths.x_post, paths.counterfactual, paths.cumulative, confidence_level
        )
    else:
        inference = _conformal_inference(delta, y, x, windows, confidence_level)
    fit_summary = _fit_summary(fit, n_pre)

    observed_total = float(paths.y_post.sum())
    incremental = inference.incremental
    att = _divide(incremental, float(n_post * n_treated_geos))
    relative = _relative(delta, incremental.ci_low, incremental.ci_high, observed_total)
    iroas = None if incremental_cost is None else _divide(incremental, incremental_cost)

    return TBRResult(
        method=method,
        incremental=incremental,
        att=att,
        relative=relative,
        p_value=inference.p_value,
        ci_status=inference.ci_status,
        standard_error=se,
        iroas=iroas,
        one_sided=_one_sided(inference, delta, observed_total, incremental_cost),
        fit=fit_summary,
        series=_series(paths, inference),
        confidence_level=confidence_level,
        n_test_days=n_post,
        n_treated_geos=int(n_treated_geos),
        observed_total=observed_total,
        counterfactual_total=observed_total - delta,
        incremental_cost=None if incremental_cost is None else float(incremental_cost),
        warnings=_warnings(
            method, fit_summary.residual_autocorrelation, n_pre, n_pre + n_post, inference, confidence_level
        ),
    )
