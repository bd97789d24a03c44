"""Geo-lift estimation: synthetic control (or its ridge augmentation) with conformal inference.

The analysis GeoLift (Meta) runs through ``augsynth``: the treated markets are averaged into one
series ``y_t``; the synthetic control (:mod:`stats.geo.synthetic_control`, Abadie, Diamond &
Hainmueller 2010, with unit fixed effects) or the ridge-augmented synthetic control
(:mod:`stats.geo.augmented_synthetic_control`, Ben-Michael, Feller & Rothstein 2021) is fitted on the
pre-period and predicts the counterfactual ``y0_t``; then, with ``n`` treated markets and ``T1``
test periods,

* ATT (per treated market per test period) ``= mean_{t test} (y_t - y0_t)``;
* incremental ``= n * T1 * ATT`` (observed minus counterfactual, summed over markets and periods);
* relative lift ``= incremental / counterfactual total``, counterfactual total ``= n sum_t y0_t``;
* iROAS ``= incremental / spend``.

Inference (:mod:`stats.geo.conformal`, Chernozhukov, Wüthrich & Zhu 2021): the p-value tests "no effect"
and the interval inverts the same test over constant effects ``theta`` (so ``p <= alpha`` exactly when
``0`` is outside the interval).  The default test statistic is ``|sum_{t test} u_t|``, aimed at the
average effect (the ATT the interval is about).  GeoLift's own statistic ``sum |u_t|`` tests the
sharp null "no effect on any day"; it also grows with the day-to-day spread of the effect, so when
the effect varies over the test its inverted set can exclude the point estimate or be empty
(GeoLift's walkthrough: ATT 155.6 with an accepted set of [461, 567] by block permutations and
none by iid ones), which is no interval for the ATT.  Its p-value (iid permutations, as GeoLift
computes it) is still reported, as ``p_value_sharp_null``: it can be small while the ATT interval
holds 0, and the two then answer different questions, not contradicting each other.

Incremental, relative lift and iROAS intervals are the ATT interval
mapped through the formulas above (relative: ``n T1 theta / (observed total - n T1 theta)``, which
increases with ``theta``).  The in-space placebo p-value (:mod:`stats.geo.placebo`) is reported as well.

The series covers the pre and test periods: ``observed`` and ``counterfactual`` are the treated
markets' *totals* per period (``n y_t`` and ``n y0_t``); ``ci_low``/``ci_high`` bound the
counterfactual total on test periods from the per-period conformal intervals (``None`` before the
test and where unbounded).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from stats.errors import InvalidProblem
from stats.geo.augmented_synthetic_control import fit_augmented_synthetic_control
from stats.geo.conformal import CiStatus, ConformalInference, Scheme, Statistic, conformal_inference
from stats.geo.placebo import in_space_placebo
from stats.geo.synthetic_control import fit_synthetic_control
from stats.intervals import Interval

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
Method = Literal["synthetic_control", "augmented_synthetic_control"]

__all__ = ["GeoLiftEstimate", "GeoLiftFit", "GeoLiftOptions", "GeoLiftSeries", "Lift", "estimate_geo_lift"]

# Weights smaller than this (in absolute value) are left out of the reported weights.
WEIGHT_FLOOR = 1e-6


@dataclass(frozen=True)
class Lift:
    """Absolute lift (the ATT, per treated market per test period) and relative lift."""

    absolute: Interval
    relative: Interval


@dataclass(frozen=True)
class GeoLiftFit:
    """Pre-period fit: RMSE of the treated average, scaled L2 imbalance, ridge penalty (ASCM only)."""

    rmse: float
    scaled_l2_imbalance: float
    ridge_lambda: float | None


@dataclass(frozen=True)
class GeoLiftSeries:
    """Treated markets' totals per period (panel column indices), with counterfactual bands on test periods."""

    period: tuple[int, ...]
    observed: tuple[float, ...]
    counterfactual: tuple[float, ...]
    ci_low: tuple[float | None, ...]
    ci_high: tuple[float | None, ...]


@dataclass(frozen=True)
class GeoLiftEstimate:
    """Result of :func:`estimate_geo_lift`; ``None`` interval bounds are unbounded or unavailable.

    ``ci_status`` says how the accepted set of the inverted test looked (``"interval"``,
    ``"non_convex"`` or ``"empty"``, see :class:`stats.geo.conformal.Inversion`); ``estimate_in_ci`` is
    false when the interval does not contain the point estimate: the re-fit under each null moves the
    counterfactual, so with a poor pre-period fit or a very short test the accepted set can sit beside
    the estimate.
    """

    method: Method
    confidence_level: float
    treated: tuple[str, ...]
    n_test_periods: int
    att: Interval
    incremental: Interval
    lift: Lift
    p_value: float
    p_value_iid: float
    p_value_sharp_null: float
    placebo_p_value: float | None
    iroas: Interval | None
    weights: dict[str, float]
    fit: GeoLiftFit
    series: GeoLiftSeries
    observed_total: float
    counterfactual_total: float
    ci_status: CiStatus
    estimate_in_ci: bool
    statistic: Statistic
    scheme: Scheme
    n_permutations: int


@dataclass(frozen=True, kw_only=True)
class GeoLiftOptions:
    """How :func:`estimate_geo_lift` analyses a test: the estimator, the conformal test, what else to report.

    The estimator of the counterfactual:

    * ``method``: ``"synthetic_control"`` (non-negative donor weights summing to 1, Abadie, Diamond &
      Hainmueller 2010) or ``"augmented_synthetic_control"`` (with a ridge correction whose penalty is
      cross-validated on the pre-period, Ben-Michael, Feller & Rothstein 2021);
    * ``fixed_effects``: fit the pre-period series de-meaned (unit fixed effects: the counterfactual is
      the treated pre-period mean plus the weighted donors' deviations from their own means), as GeoLift
      does; without them the weighted donors themselves.

    The conformal test behind ``p_value`` and every interval (:func:`stats.geo.conformal.conformal_inference`):

    * ``confidence_level``: ``1 - alpha``, strictly between 0 and 1; ``p_value <= alpha`` exactly when
      the ATT interval excludes 0;
    * ``statistic`` and ``q``: ``"mean"``, ``|sum_{t test} u_t|`` (a test of the average effect), or
      ``"total"``, ``(sum_{t test} |u_t|^q)^{1/q}`` (``q = 1``: GeoLift's ``sum |u_t|``);
    * ``scheme``: the permutations the reported test uses, ``"block"`` (all ``T`` cyclic shifts of the
      residuals) or ``"iid"``; the p-values of both are reported;
    * ``n_permutations``: how many random permutations the iid tests draw (``p_value_iid`` and
      ``p_value_sharp_null``; the block test uses all ``T`` shifts);
    * ``seed``: seeds those permutations, so an estimate is reproducible.

    What else to compute:

    * ``pointwise``: per-period conformal bands on the counterfactual (``series.ci_low``/``ci_high``);
    * ``placebo``: the in-space placebo p-value (:mod:`stats.geo.placebo`; ``None`` without it).

    ``method`` and ``confidence_level`` have no default; the others default to the analysis the API runs.
    """

    method: Method
    confidence_level: float
    fixed_effects: bool = True
    statistic: Statistic = "mean"
    q: float = 1.0
    scheme: Scheme = "block"
    n_permutations: int = 1000
    seed: int = 0
    pointwise: bool = True
    placebo: bool = True


def _period(sl: slice, length: int, field: str) -> range:
    if not isinstance(sl, slice):
        raise InvalidProblem(field, "must be a slice of the panel's periods")
    start, stop, step = sl.indices(length)
    if step != 1:
        raise InvalidProblem(field, "must be a contiguous range of periods")
    return range(start, max(start, stop))


def _scale(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def _relative(theta: float | None, observed_total: float, scale: float) -> float | None:
    """Relative lift of a constant effect ``theta``: ``scale theta / (observed_total - scale theta)``."""
    if theta is None:
        return None
    cf = observed_total - scale * theta
    if not cf > 0.0:
        return None
    return scale * theta / cf


def _check_options(options: GeoLiftOptions, spend: float | None) -> None:
    """Refuse an unknown method, a confidence level outside ``(0, 1)`` or a spend that is not positive."""
    if options.method not in ("synthetic_control", "augmented_synthetic_control"):
        raise InvalidProblem("method", "must be 'synthetic_control' or 'augmented_synthetic_control'")
    level = options.confidence_level
    if not (isinstance(level, float | int) and 0.0 < level < 1.0):
        raise InvalidProblem("confidence_level", "must be strictly between 0 and 1")
    if spend is not None and not (np.isfinite(spend) and spend > 0.0):
        raise InvalidProblem("spend", "must be a positive number")


@dataclass(frozen=True)
class _Design:
    """The checked panel: market names, treated and donor rows, periods, and the series the analysis uses.

    ``block`` holds the treated rows then the donor rows, over the pre-period columns then the test
    columns (``columns``, panel indices); ``y`` is the treated markets' average over those columns,
    ``donors`` the donors' series ``(T, J)``, and ``post_mask`` marks the test columns.
    """

    names: list[str]
    treated_names: list[str]
    treated_rows: list[int]
    donor_rows: list[int]
    pre: range
    post: range
    columns: NDArray[np.intp]
    block: FloatArray
    y: FloatArray
    donors: FloatArray
    post_mask: BoolArray

    @property
    def n_treated(self) -> int:
        return len(self.treated_rows)


def _markets(names: list[str], treated: Sequence[str]) -> tuple[list[str], list[int], list[int]]:
    """Treated names, treated rows and donor rows; refuses duplicates, unknown markets and < 2 donors."""
    if len(set(names)) != len(names):
        raise InvalidProblem("dataset", "lists a market twice")
    treated_names = [str(g) for g in treated]
    if not treated_names:
        raise InvalidProblem("treatment_markets", "must name at least one market")
    if len(set(treated_names)) != len(treated_names):
        raise InvalidProblem("treatment_markets", "lists a market twice")
    index = {g: i for i, g in enumerate(names)}
    unknown = [g for g in treated_names if g not in index]
    if unknown:
        raise InvalidProblem("treatment_markets", f"not in the dataset: {', '.join(unknown)}")
    treated_rows = [index[g] for g in treated_names]
    donor_rows = [i for i in range(len(names)) if i not in set(treated_rows)]
    if len(donor_rows) < 2:
        raise InvalidProblem("treatment_markets", "leaves fewer than 2 control markets")
    return treated_names, treated_rows, donor_rows


def _periods(pre_slice: slice, post_slice: slice, n_periods: int) -> tuple[range, range]:
    """The pre-period and the test period; refuses too short ones and a test that does not follow the pre-period."""
    pre = _period(pre_slice, n_periods, "pre_period")
    post = _period(post_slice, n_periods, "test_period")
    if len(pre) < 2:
        raise InvalidProblem("pre_period", "needs at least 2 periods")
    if len(post) < 1:
        raise InvalidProblem("test_period", "needs at least 1 period")
    if post.start < pre.stop:
        raise InvalidProblem("test_period", "must come after the pre-period ends")
    return pre, post


def _design(
    panel: FloatArray, geos: Sequence[str], treated: Sequence[str], pre_slice: slice, post_slice: slice
) -> _Design:
    """Check the panel, the markets and the periods, and cut out the block the analysis uses."""
    data = np.asarray(panel, dtype=np.float64)
    names = [str(g) for g in geos]
    if data.ndim != 2 or data.shape[0] != len(names):
        raise InvalidProblem("dataset", "the panel must have one row per market")
    treated_names, treated_rows, donor_rows = _markets(names, treated)
    pre, post = _periods(pre_slice, post_slice, data.shape[1])
    columns = np.concatenate([np.arange(pre.start, pre.stop), np.arange(post.start, post.stop)])
    block = data[np.ix_(np.asarray(treated_rows + donor_rows, dtype=np.intp), columns)]
    if not np.isfinite(block).all():
        raise InvalidProblem("dataset", "outcomes must be finite numbers (no NaN or missing values)")
    n_treated = len(treated_rows)
    post_mask = np.zeros(columns.size, dtype=bool)
    post_mask[len(pre) :] = True
    y, donors = block[:n_treated].mean(axis=0), block[n_treated:].T
    return _Design(names, treated_names, treated_rows, donor_rows, pre, post, columns, block, y, donors, post_mask)


@dataclass(frozen=True)
class _Fit:
    """Donor weights, the counterfactual over all analysed periods, and the pre-period fit."""

    weights: FloatArray
    counterfactual: FloatArray
    fit: GeoLiftFit


def _fit(method: Method, y: FloatArray, donors: FloatArray, t0: int, fixed_effects: bool) -> _Fit:
    """Fit the synthetic control (or its ridge augmentation) on the first ``t0`` periods and predict all."""
    if method == "synthetic_control":
        scm = fit_synthetic_control(y[:t0], donors[:t0], fixed_effects=fixed_effects)
        fit = GeoLiftFit(rmse=scm.pre_rmse, scaled_l2_imbalance=scm.scaled_l2_imbalance, ridge_lambda=None)
        return _Fit(scm.weights, scm.predict(donors), fit)
    ascm = fit_augmented_synthetic_control(y[:t0], donors[:t0], fixed_effects=fixed_effects)
    fit = GeoLiftFit(rmse=ascm.pre_rmse, scaled_l2_imbalance=ascm.scaled_l2_imbalance, ridge_lambda=ascm.ridge_lambda)
    return _Fit(ascm.weights, ascm.predict(donors), fit)


def _counterfactual_bands(
    inference: ConformalInference, design: _Design
) -> tuple[tuple[float | None, ...], tuple[float | None, ...]]:
    """Bounds of the counterfactual total per period: ``None`` before the test and where unbounded."""
    y, n_treated, t0, t1 = design.y, design.n_treated, len(design.pre), len(design.post)
    series_low: list[float | None] = [None] * t0
    series_high: list[float | None] = [None] * t0
    if inference.pointwise_low is not None and inference.pointwise_high is not None:
        for k in range(t1):
            e_lo, e_hi = inference.pointwise_low[k], inference.pointwise_high[k]
            # Counterfactual total = n (y_t - effect): the effect's upper bound gives its lower bound.
            series_low.append(None if e_hi is None else float(n_treated * (y[t0 + k] - e_hi)))
            series_high.append(None if e_lo is None else float(n_treated * (y[t0 + k] - e_lo)))
    else:
        series_low += [None] * t1
        series_high += [None] * t1
    return tuple(series_low), tuple(series_high)


def _series(design: _Design, counterfactual: FloatArray, inference: ConformalInference) -> GeoLiftSeries:
    """The treated markets' observed and counterfactual totals per analysed period, with the bands."""
    series_low, series_high = _counterfactual_bands(inference, design)
    return GeoLiftSeries(
        period=tuple(int(c) for c in design.columns),
        observed=tuple(float(v) for v in design.n_treated * design.y),
        counterfactual=tuple(float(v) for v in design.n_treated * counterfactual),
        ci_low=series_low,
        ci_high=series_high,
    )


@dataclass(frozen=True)
class _Totals:
    """The point estimates over the test (see the module docstring).

    ``att`` is ``mean_{t test} (y_t - y0_t)``; ``per_effect`` is ``n T1``, the number of market-periods a
    constant effect adds up over; ``observed`` and ``counterfactual`` are the treated markets' totals over
    the test, ``sum y`` and ``n sum_t y0_t``.
    """

    att: float
    per_effect: float
    observed: float
    counterfactual: float


def _totals(design: _Design, counterfactual: FloatArray) -> _Totals:
    """The ATT and the test's totals, from the analysed series and the counterfactual ``y0``."""
    n_treated, t0 = design.n_treated, len(design.pre)
    effects = design.y - counterfactual
    return _Totals(
        att=float(effects[t0:].mean()),
        per_effect=float(n_treated * len(design.post)),
        observed=float(design.block[:n_treated, t0:].sum()),
        counterfactual=float(n_treated * counterfactual[t0:].sum()),
    )


@dataclass(frozen=True)
class _Intervals:
    """The ATT interval and its images: incremental, relative lift and iROAS (``None`` without spend)."""

    att: Interval
    incremental: Interval
    relative: Interval
    iroas: Interval | None


def _intervals(totals: _Totals, inference: ConformalInference, spend: float | None) -> _Intervals:
    """Map the estimate and the ATT interval through the incremental, relative-lift and iROAS formulas."""
    lo, hi = inference.ci_low, inference.ci_high
    per_effect = totals.per_effect
    incremental = per_effect * totals.att
    relative_estimate = incremental / totals.counterfactual if totals.counterfactual > 0.0 else float("nan")
    relative = Interval(
        relative_estimate,
        _relative(lo, totals.observed, per_effect),
        _relative(hi, totals.observed, per_effect),
    )
    iroas = None
    if spend is not None:
        iroas = Interval(incremental / spend, _scale(lo, per_effect / spend), _scale(hi, per_effect / spend))
    return _Intervals(
        att=Interval(totals.att, lo, hi),
        incremental=Interval(incremental, _scale(lo, per_effect), _scale(hi, per_effect)),
        relative=relative,
        iroas=iroas,
    )


def _inference(
    design: _Design, ridge_lambda: float | None, options: GeoLiftOptions, progress: Callable[[float], None]
) -> ConformalInference:
    """The conformal test and intervals ``options`` ask for, re-fitting the estimator ``ridge_lambda`` selects."""
    return conformal_inference(
        design.y,
        design.donors,
        design.post_mask,
        alpha=1.0 - float(options.confidence_level),
        fixed_effects=options.fixed_effects,
        ridge_lambda=ridge_lambda,
        statistic=options.statistic,
        q=options.q,
        n_permutations=options.n_permutations,
        seed=options.seed,
        scheme=options.scheme,
        pointwise=options.pointwise,
        progress=progress,
    )


def _placebo_p_value(design: _Design, ridge_lambda: float | None, options: GeoLiftOptions) -> float | None:
    """The in-space placebo p-value, or ``None`` when ``options.placebo`` is off."""
    if not options.placebo:
        return None
    placebo = in_space_placebo(
        design.y, design.donors, design.post_mask, fixed_effects=options.fixed_effects, ridge_lambda=ridge_lambda
    )
    return placebo.p_value


def _estimate(
    design: _Design,
    options: GeoLiftOptions,
    fitted: _Fit,
    inference: ConformalInference,
    placebo_p_value: float | None,
    spend: float | None,
) -> GeoLiftEstimate:
    """The result: the point estimates with their intervals, the p-values, weights, fit and series."""
    totals = _totals(design, fitted.counterfactual)
    intervals = _intervals(totals, inference, spend)
    donor_names = [design.names[i] for i in design.donor_rows]
    return GeoLiftEstimate(
        method=options.method,
        confidence_level=float(options.confidence_level),
        treated=tuple(design.treated_names),
        n_test_periods=len(design.post),
        att=intervals.att,
        incremental=intervals.incremental,
        lift=Lift(absolute=intervals.att, relative=intervals.relative),
        p_value=inference.p_value,
        p_value_iid=inference.p_value_iid,
        p_value_sharp_null=inference.p_value_sharp_null,
        placebo_p_value=placebo_p_value,
        iroas=intervals.iroas,
        weights={donor_names[j]: float(w) for j, w in enumerate(fitted.weights) if abs(w) >= WEIGHT_FLOOR},
        fit=fitted.fit,
        series=_series(design, fitted.counterfactual, inference),
        observed_total=totals.observed,
        counterfactual_total=totals.counterfactual,
        ci_status=inference.ci_status,
        estimate_in_ci=inference.estimate_in_ci,
        statistic=options.statistic,
        scheme=options.scheme,
        n_permutations=options.n_permutations,
    )


def estimate_geo_lift(
    panel: FloatArray,
    geos: Sequence[str],
    treated: Sequence[str],
    pre_slice: slice,
    post_slice: slice,
    options: GeoLiftOptions,
    *,
    spend: float | None = None,
    progress: Callable[[float], None] | None = None,
) -> GeoLiftEstimate:
    """Estimate the lift of a geo test (see the module docstring).

    ``panel`` ``(G, T)`` holds the KPI of the markets ``geos`` (rows) per period (columns);
    ``treated`` names the treatment markets, every other market is a donor.  ``pre_slice`` and
    ``post_slice`` select the pre-period and the test period (the test must come after the
    pre-period; periods outside both are ignored).  ``options`` choose the estimator, the conformal
    test and what else to compute (:class:`GeoLiftOptions`).  ``spend``, the test's media spend,
    adds the iROAS.  ``progress`` receives fractions in ``[0, 1]`` as the work advances.
    """
    report = progress if progress is not None else (lambda _fraction: None)
    report(0.0)
    _check_options(options, spend)
    design = _design(panel, geos, treated, pre_slice, post_slice)
    fitted = _fit(options.method, design.y, design.donors, len(design.pre), options.fixed_effects)
    ridge_lambda = fitted.fit.ridge_lambda
    report(0.1)
    inference = _inference(design, ridge_lambda, options, lambda f: report(0.1 + 0.75 * f))
    report(0.85)
    placebo_p_value = _placebo_p_value(design, ridge_lambda, options)
    estimate = _estimate(design, options, fitted, inference, placebo_p_value, spend)
    report(1.0)
    return estimate
