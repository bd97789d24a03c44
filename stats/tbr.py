"""Time-Based Regression (TBR) for geo experiments.

Follows Kerman, Wang & Vaver (2017), "Estimating ad effectiveness using geo experiments in a
time-based regression framework" (Google), as implemented in Google's ``matched_markets``
package (``methodology/tbr.py``, ``tbr_iroas.py``).

Model. Over the pre-period (``T0`` days) the treated group's aggregate response is regressed on
the control group's aggregate response,

    y_t = a + b * x_t + e_t,   e_t iid N(0, sigma^2),

and the fitted line predicts the counterfactual ``yhat_t = a_hat + b_hat * x_t`` over the ``n``
test days. The cumulative causal effect is ``Delta = sum_test (y_t - yhat_t)``.

Uncertainty (the paper's eqn. 5, derived here). With ``theta_hat - theta ~ N(0, sigma^2 (X'X)^-1)``
independent of the test-period noise, ``Delta_hat - Delta = sum e_t - s' (theta_hat - theta)``
with ``s = (n, sum_test x_t)``, so

    Var(Delta_hat) = sigma^2 * (n + s' (X'X)^-1 s)
                   = sigma^2 * (n + n^2 / T0 + (sum_test (x_t - xbar_pre))^2 / Sxx),

with ``Sxx = sum_pre (x_t - xbar_pre)^2``. ``sigma^2`` is estimated by ``SSE / (T0 - 2)`` and the
standardized effect follows a t distribution with ``T0 - 2`` degrees of freedom (the paper's
posterior under the non-informative prior; numerically the frequentist predictive interval).

Everything is numpy/scipy; nothing here knows about HTTP or storage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from scipy import stats

from stats.errors import InvalidProblem
from stats.intervals import Interval

FloatArray = npt.NDArray[np.float64]

__all__ = [
    "TBRFit",
    "TBROneSided",
    "TBRResult",
    "TBRSeries",
    "estimate_tbr",
    "tbr_effect_batch",
]


@dataclass(frozen=True)
class TBRFit:
    """The pre-period regression ``treated_t = intercept + slope * control_t``.

    ``sigma`` is the residual standard error ``sqrt(SSE / df)`` used for inference; ``rmse`` is the
    in-sample ``sqrt(SSE / n_pre)``; ``df = n_pre - 2``. ``r_squared`` is NaN when the treated
    pre-period series is constant.
    """

    intercept: float
    slope: float
    sigma: float
    df: int
    rmse: float
    r_squared: float
    n_pre: int


@dataclass(frozen=True, eq=False)
class TBRSeries:
    """Per-day series (read-only arrays).

    Test period (one entry per test day): ``observed`` treated response, ``counterfactual``
    prediction, ``ci_low``/``ci_high`` the pointwise predictive band of the counterfactual at the
    result's two-sided confidence level (``yhat_t -+ t * sigma * sqrt(1 + 1/T0 + (x_t - xbar)^2 /
    Sxx)``), ``effect = observed - counterfactual``, and the running sum ``cumulative_effect``
    with its band ``cumulative_ci_low``/``cumulative_ci_high`` (the last entry is the result's
    ``incremental`` interval). Pre-period: ``pre_observed`` and the in-sample ``pre_fitted``.
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

    ``p_value`` tests H0: Delta <= 0 against H1: Delta > 0 (so ``1 - p_value`` is the paper's
    posterior probability ``P(Delta > 0)``). The intervals are the one-sided intervals at the
    result's confidence level, ``[Delta_hat - t_{level, df} * se, +inf)``, mapped like the
    two-sided ones; an unbounded side is ``None``. For a negative ``incremental_cost`` the iROAS
    bound becomes an upper bound (``ci_high``).
    """

    p_value: float
    incremental: Interval
    relative: Interval
    iroas: Interval | None


@dataclass(frozen=True)
class TBRResult:
    """Outcome of :func:`estimate_tbr`.

    * ``incremental``: cumulative effect Delta over the test days, two-sided CI at
      ``confidence_level``; ``standard_error`` is its predictive standard error.
    * ``att``: ``incremental / (n_test_days * n_treated_geos)``, the average effect per treated
      geo and test day (same CI, scaled).
    * ``relative``: ``Delta / counterfactual_total`` with ``counterfactual_total = observed_total -
      Delta_hat``; its CI maps the bounds of Delta through the increasing map ``d -> d /
      (observed_total - d)`` (what matched_markets' simulated quantiles converge to). A bound is
      ``None`` where the map is undefined (``d >= observed_total``); the estimate is NaN if the
      counterfactual total is not positive.
    * ``p_value``: two-sided, from the same t distribution as the CI, so the CI excludes 0 exactly
      when ``p_value < 1 - confidence_level``.
    * ``iroas``: ``Delta / incremental_cost`` with the CI of Delta divided by the (fixed, known)
      incremental cost — matched_markets' fixed-cost scenario; ``None`` without a cost.
    """

    incremental: Interval
    att: Interval
    relative: Interval
    p_value: float
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
    return _PreFit(intercept, slope, x_mean, sxx, sse, sst, sigma, df)


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
    """Cumulative TBR effect for a stack of independent problems, for simulation.

    ``treated`` and ``control`` are ``(R, T)`` (or ``(T,)``); returns ``(delta, standard_error,
    df)`` with ``delta`` and ``standard_error`` of shape ``(R,)``: the same numbers
    :func:`estimate_tbr` reports as ``incremental.estimate`` and ``standard_error``.
    """
    y, x, windows = _checked_inputs(treated, control, pre_slice, post_slice)
    fit = _fit_pre(y, x, windows)
    delta, se = _effect_and_se(y, x, windows, fit)
    return delta, se, fit.df


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
    """Scale an interval by ``1 / divisor``, swapping the bounds for a negative divisor."""
    low = None if interval.ci_low is None else interval.ci_low / divisor
    high = None if interval.ci_high is None else interval.ci_high / divisor
    if divisor < 0:
        low, high = high, low
    return Interval(estimate=interval.estimate / divisor, ci_low=low, ci_high=high)


def _read_only(array: FloatArray) -> FloatArray:
    array = np.array(array, dtype=np.float64)
    array.flags.writeable = False
    return array


def estimate_tbr(
    treated: npt.ArrayLike,
    control: npt.ArrayLike,
    pre_slice: slice,
    post_slice: slice,
    confidence_level: float,
    incremental_cost: float | None = None,
    *,
    n_treated_geos: int = 1,
) -> TBRResult:
    """Estimate the cumulative causal effect of a geo experiment by Time-Based Regression.

    ``treated`` and ``control`` are the daily aggregate responses of the treatment and control
    groups (shape ``(T,)``). ``pre_slice`` selects the pre-period used for the fit and
    ``post_slice`` the test days credited to the campaign (leave any cool-down out of it, or in,
    as the analysis requires); days outside both are ignored. ``incremental_cost`` is the
    treatment group's incremental spend over the test days (fixed-cost scenario); it adds the
    iROAS. ``n_treated_geos`` only scales ``att``.

    Raises :class:`~stats.errors.InvalidProblem` for unusable inputs (mismatched lengths, fewer than
    3 pre-period days, an empty or overlapping test window, missing values inside the windows, a
    constant control pre-period, a confidence level outside (0, 1), a zero or non-finite cost).
    """
    if not 0.0 < confidence_level < 1.0:
        raise InvalidProblem("confidence_level", "must lie strictly between 0 and 1")
    if isinstance(n_treated_geos, bool) or not isinstance(n_treated_geos, (int, np.integer)):
        raise InvalidProblem("n_treated_geos", "must be a whole number")
    if n_treated_geos < 1:
        raise InvalidProblem("n_treated_geos", "must be at least 1")
    if incremental_cost is not None and (not np.isfinite(incremental_cost) or incremental_cost == 0):
        raise InvalidProblem("incremental_cost", "must be a finite, non-zero amount")
    if np.ndim(treated) != 1:
        raise InvalidProblem("treated", "must be a one-dimensional daily series")
    if np.ndim(control) != 1:
        raise InvalidProblem("control", "must be a one-dimensional daily series")
    if np.shape(treated) != np.shape(control):
        raise InvalidProblem(
            "control",
            f"has {np.shape(control)[0]} days but treated has {np.shape(treated)[0]}; they must match",
        )

    y, x, windows = _checked_inputs(treated, control, pre_slice, post_slice)
    fit = _fit_pre(y, x, windows)
    delta_arr, se_arr = _effect_and_se(y, x, windows, fit)
    delta, se, df = float(delta_arr[0]), float(se_arr[0]), fit.df
    intercept, slope = float(fit.intercept[0]), float(fit.slope[0])
    sigma, x_mean, sxx = float(fit.sigma[0]), float(fit.x_mean[0]), float(fit.sxx[0])

    t_two = float(stats.t.ppf(0.5 + confidence_level / 2.0, df))
    t_one = float(stats.t.ppf(confidence_level, df))
    p_two, p_one = _p_values(delta, se, df)

    # Per-day series.
    y_pre, x_pre = y[0, windows.pre], x[0, windows.pre]
    y_post, x_post = y[0, windows.post], x[0, windows.post]
    n_pre, n_post = windows.n_pre, windows.n_post
    pre_fitted = intercept + slope * x_pre
    counterfactual = intercept + slope * x_post
    effect = y_post - counterfactual
    dev = x_post - x_mean
    point_se = sigma * np.sqrt(1.0 + 1.0 / n_pre + dev * dev / sxx)
    k = np.arange(1, n_post + 1, dtype=np.float64)
    cum_lever = np.cumsum(dev)
    cum_se = sigma * np.sqrt(k + k * k / n_pre + cum_lever * cum_lever / sxx)
    cumulative = np.cumsum(effect)
    series = TBRSeries(
        observed=_read_only(y_post),
        counterfactual=_read_only(counterfactual),
        ci_low=_read_only(counterfactual - t_two * point_se),
        ci_high=_read_only(counterfactual + t_two * point_se),
        effect=_read_only(effect),
        cumulative_effect=_read_only(cumulative),
        cumulative_ci_low=_read_only(cumulative - t_two * cum_se),
        cumulative_ci_high=_read_only(cumulative + t_two * cum_se),
        pre_observed=_read_only(y_pre),
        pre_fitted=_read_only(pre_fitted),
    )

    sst = float(fit.sst[0])
    sse = float(fit.sse[0])
    fit_summary = TBRFit(
        intercept=intercept,
        slope=slope,
        sigma=sigma,
        df=df,
        rmse=float(np.sqrt(sse / n_pre)),
        r_squared=1.0 - sse / sst if sst > 0 else float("nan"),
        n_pre=n_pre,
    )

    observed_total = float(y_post.sum())
    incremental = Interval(estimate=delta, ci_low=delta - t_two * se, ci_high=delta + t_two * se)
    per_unit = float(n_post * n_treated_geos)
    att = Interval(
        estimate=delta / per_unit,
        ci_low=(delta - t_two * se) / per_unit,
        ci_high=(delta + t_two * se) / per_unit,
    )
    relative = _relative(delta, incremental.ci_low, incremental.ci_high, observed_total)
    iroas = None if incremental_cost is None else _divide(incremental, incremental_cost)

    one_sided_incremental = Interval(estimate=delta, ci_low=delta - t_one * se, ci_high=None)
    one_sided = TBROneSided(
        p_value=p_one,
        incremental=one_sided_incremental,
        relative=_relative(delta, one_sided_incremental.ci_low, None, observed_total),
        iroas=(None if incremental_cost is None else _divide(one_sided_incremental, incremental_cost)),
    )

    return TBRResult(
        incremental=incremental,
        att=att,
        relative=relative,
        p_value=p_two,
        standard_error=se,
        iroas=iroas,
        one_sided=one_sided,
        fit=fit_summary,
        series=series,
        confidence_level=confidence_level,
        n_test_days=n_post,
        n_treated_geos=int(n_treated_geos),
        observed_total=observed_total,
        counterfactual_total=observed_total - delta,
        incremental_cost=None if incremental_cost is None else float(incremental_cost),
    )
