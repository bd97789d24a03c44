"""Lift of treatment over holdout: absolute, relative, incremental outcome, iROAS, cost, MDE.

Absolute lift (difference of means or proportions), unpooled ("Welch") normal test::

    Δ = ȳ_T − ȳ_H,    SE = sqrt(SE_T² + SE_H²),    z = Δ / SE
    CI = Δ ± z_{1−α/2}·SE,    p = 2·Φ(−|z|)

The same unpooled SE enters both the interval and the p-value, so p < α exactly when the interval
excludes 0. For proportions SE_i² = p_i(1 − p_i)/n_i (the Wald interval, Agresti & Caffo 2000; this is
statsmodels' ``method='wald'``); for means SE_i² = s_i²/n_i (Welch 1947, with a normal rather than a
t reference distribution, which is what holdout tests with thousands of units warrant).

Relative lift ρ − 1 with ρ = ȳ_T / ȳ_H, by the delta method on the log ratio (Katz, Baptista,
Azen & Pike 1978 for risk ratios)::

    se_log = sqrt(SE_T²/ȳ_T² + SE_H²/ȳ_H²)
    CI = exp(log ρ ± z_{1−α/2}·se_log) − 1,    p = 2·Φ(−|log ρ| / se_log)

so again p < α exactly when the interval excludes 0. For proportions se_log² = 1/c_T − 1/n_T + 1/c_H
− 1/n_H, statsmodels' ``compare='ratio', method='log'``.

Fieller's interval for the ratio a/b (Fieller 1954; Franz 2007, "Ratios: a short guide to confidence
limits and proper use") solves (a − ρb)² ≤ z²(v_a − 2ρ·v_ab + ρ²·v_b) for ρ. With g = z²·v_b / b²::

    ρ_± = [ Q − g·v_ab/v_b ± (z/|b|)·sqrt(v_a − 2Q·v_ab + Q²·v_b − g·(v_a − v_ab²/v_b)) ] / (1 − g)

where Q = a/b. When g ≥ 1 the denominator is not significantly different from 0 and the confidence
set is unbounded (the whole line or two rays): reported as ``None`` bounds with ``unbounded=True``.

Incremental outcome over the treated arm is Δ·n_T (interval and SE scaled by n_T). iROAS is
incremental value / spend; cost per incremental conversion is spend / incremental conversions with
its interval from inverting the incremental interval (unbounded above when that interval reaches 0).
The minimum detectable effect at power 1 − β from an observed SE is (z_{1−α/2} + z_{1−β})·SE
(e.g. Kohavi, Tang & Xu 2020, *Trustworthy Online Controlled Experiments*, ch. 17).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import special

from stats.arm_statistics import ArmSummary, FloatArray
from stats.errors import InvalidProblem


def validate_probability(value: float, path: str) -> float:
    """A level such as alpha or power: a finite number strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidProblem(path, "must be a finite number")
    if not 0.0 < value < 1.0:
        raise InvalidProblem(path, "must be strictly between 0 and 1")
    return float(value)


def z_critical(alpha: float) -> float:
    """z_{1−α/2}, the two-sided normal critical value, as ``−Φ⁻¹(exp(log α − log 2))``: the upper tail
    directly and in log space, so that a tiny α (where 1 − α/2 rounds to 1, or α/2 underflows) still
    gives its finite quantile."""
    validate_probability(alpha, "alpha")
    return -float(special.ndtri_exp(math.log(alpha) - math.log(2.0)))


def two_sided_p_value(z: float) -> float:
    """2·Φ(−|z|)."""
    return float(min(1.0, 2.0 * special.ndtr(-abs(z))))


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


# ---------------------------------------------------------------------------------------------------
# Array kernels: the formulas, elementwise over many experiments (NaN where undefined).


class DifferenceArrays(NamedTuple):
    """Elementwise absolute-lift results; NaN where the standard error is 0."""

    estimate: FloatArray
    std_error: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    p_value: FloatArray


def difference_arrays(
    treatment_mean: FloatArray,
    treatment_mean_variance: FloatArray,
    holdout_mean: FloatArray,
    holdout_mean_variance: FloatArray,
    alpha: float,
) -> DifferenceArrays:
    """Δ = ȳ_T − ȳ_H with the unpooled SE, its Wald interval and two-sided p-value."""
    z_crit = z_critical(alpha)
    estimate = np.asarray(treatment_mean - holdout_mean, dtype=np.float64)
    std_error = np.sqrt(np.asarray(treatment_mean_variance + holdout_mean_variance, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        defined = std_error > 0.0
        z = np.where(defined, estimate / np.where(defined, std_error, 1.0), np.nan)
        p_value = np.minimum(1.0, 2.0 * special.ndtr(-np.abs(z)))
    half = np.where(defined, z_crit * std_error, np.nan)
    return DifferenceArrays(estimate, std_error, estimate - half, estimate + half, p_value)


class LogRatioArrays(NamedTuple):
    """Elementwise relative-lift results by the delta method on log(ȳ_T/ȳ_H); NaN where undefined."""

    estimate: FloatArray
    std_error_log: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    p_value: FloatArray


def log_ratio_arrays(
    treatment_mean: FloatArray,
    treatment_mean_variance: FloatArray,
    holdout_mean: FloatArray,
    holdout_mean_variance: FloatArray,
    alpha: float,
) -> LogRatioArrays:
    """ρ − 1 with interval exp(log ρ ± z·se_log) − 1; needs both means > 0 (NaN otherwise)."""
    z_crit = z_critical(alpha)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        positive = (treatment_mean > 0.0) & (holdout_mean > 0.0)
        t = np.where(positive, treatment_mean, 1.0)
        h = np.where(positive, holdout_mean, 1.0)
        log_ratio = np.log(t) - np.log(h)
        se_log = np.sqrt(treatment_mean_variance / (t * t) + holdout_mean_variance / (h * h))
        defined = positive & (se_log > 0.0)
        se_safe = np.where(defined, se_log, 1.0)
        p_value = np.where(defined, np.minimum(1.0, 2.0 * special.ndtr(-np.abs(log_ratio / se_safe))), np.nan)
        low = np.where(defined, np.expm1(log_ratio - z_crit * se_log), np.nan)
        high = np.where(defined, np.expm1(log_ratio + z_crit * se_log), np.nan)
        estimate = np.where(
            holdout_mean > 0.0, treatment_mean / np.where(holdout_mean > 0.0, holdout_mean, 1.0), np.nan
        )
    return LogRatioArrays(
        np.asarray(estimate - 1.0, dtype=np.float64),
        np.asarray(np.where(positive, se_log, np.nan), dtype=np.float64),
        np.asarray(low, dtype=np.float64),
        np.asarray(high, dtype=np.float64),
        np.asarray(p_value, dtype=np.float64),
    )


# ---------------------------------------------------------------------------------------------------
# Absolute lift.


@dataclass(frozen=True)
class AbsoluteLift:
    """Δ = treatment mean − holdout mean with its unpooled normal test.

    ``ci_low``, ``ci_high`` and ``p_value`` are None when the standard error is 0 (no variation in
    either arm), with the reason in ``warnings``.
    """

    estimate: float
    std_error: float
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    z_statistic: float | None
    warnings: tuple[str, ...] = ()


def absolute_lift(
    treatment_mean: float,
    treatment_std_error: float,
    holdout_mean: float,
    holdout_std_error: float,
    *,
    alpha: float = 0.05,
) -> AbsoluteLift:
    """Difference of two independent means given each mean and its standard error.

    The formulas of :func:`difference_arrays` on one pair, with ``SE = hypot(SE_T, SE_H)`` (no square
    overflows or underflows to 0 at the extremes of float64). A difference or interval beyond the range
    of a double is refused (:class:`InvalidProblem`); ``z_statistic`` is None when it is (p = 0).
    """
    z_crit = z_critical(alpha)
    _check_estimates(("treatment_mean", treatment_mean), ("holdout_mean", holdout_mean))
    _check_std_errors(("treatment_std_error", treatment_std_error), ("holdout_std_error", holdout_std_error))
    estimate = treatment_mean - holdout_mean
    std_error = math.hypot(treatment_std_error, holdout_std_error)
    if not math.isfinite(estimate):
        raise InvalidProblem("treatment_mean", "minus the holdout mean exceeds the range of a double")
    if not std_error > 0.0:
        return AbsoluteLift(
            estimate=estimate,
            std_error=std_error,
            ci_low=None,
            ci_high=None,
            p_value=None,
            z_statistic=None,
            warnings=(
                "Neither arm shows any variation in the metric, so the lift has no standard error and "
                "no test is possible.",
            ),
        )
    half = z_crit * std_error
    ci_low, ci_high = estimate - half, estimate + half
    if not (math.isfinite(std_error) and math.isfinite(ci_low) and math.isfinite(ci_high)):
        raise InvalidProblem("treatment_std_error", "makes the interval of the lift exceed the range of a double")
    z = estimate / std_error
    return AbsoluteLift(
        estimate=estimate,
        std_error=std_error,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=two_sided_p_value(z),
        z_statistic=_finite_or_none(z),
    )


def _check_estimates(*named: tuple[str, float]) -> None:
    for path, value in named:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InvalidProblem(path, "must be a finite number")


def _check_std_errors(*named: tuple[str, float]) -> None:
    _check_estimates(*named)
    for path, value in named:
        if value < 0.0:
            raise InvalidProblem(path, "must not be negative")


def absolute_lift_from_arms(treatment: ArmSummary, holdout: ArmSummary, *, alpha: float = 0.05) -> AbsoluteLift:
    """:func:`absolute_lift` on two arms' raw means and standard errors (no CUPED)."""
    return absolute_lift(treatment.mean, treatment.std_error, holdout.mean, holdout.std_error, alpha=alpha)


# ---------------------------------------------------------------------------------------------------
# Relative lift.


@dataclass(frozen=True)
class FiellerInterval:
    """Fieller's confidence set for a ratio; ``unbounded`` when the denominator is not significant."""

    ci_low: float | None
    ci_high: float | None
    unbounded: bool


def fieller_ratio_interval(
    numerator: float,
    numerator_std_error: float,
    denominator: float,
    denominator_std_error: float,
    *,
    alpha: float = 0.05,
    covariance: float = 0.0,
) -> FiellerInterval:
    """Fieller's (1954) interval for numerator/denominator (see the module docstring).

    ``covariance`` is Cov(numerator, denominator); 0 for two independent arms, and at most the product
    of the standard errors in magnitude. Fieller's set scales with a/b, so it is solved with the
    numerator and its SE in units of ``2^ea ≈ max(|a|, SE_a)`` and the denominator in units of
    ``2^eb`` (exact, and no square overflows or underflows to 0), then scaled by ``2^(ea − eb)``.
    Bounds beyond the range of a double are reported as an unbounded set.
    """
    z = z_critical(alpha)
    _check_estimates(("numerator", numerator), ("denominator", denominator), ("covariance", covariance))
    _check_std_errors(("numerator_std_error", numerator_std_error), ("denominator_std_error", denominator_std_error))
    ea = _binary_exponent(max(abs(numerator), numerator_std_error))
    eb = _binary_exponent(max(abs(denominator), denominator_std_error))
    a, sa = math.ldexp(numerator, -ea), math.ldexp(numerator_std_error, -ea)
    b, sb = math.ldexp(denominator, -eb), math.ldexp(denominator_std_error, -eb)
    try:
        vab = math.ldexp(covariance, -ea - eb)
    except OverflowError:
        vab = math.inf
    va, vb = sa * sa, sb * sb
    if abs(vab) > sa * sb * (1.0 + 1e-12):
        raise InvalidProblem("covariance", "exceeds the product of the standard errors (a correlation beyond ±1)")
    z2 = z * z
    # Quadratic in ρ: (b² − z²v_b)ρ² − 2(ab − z²v_ab)ρ + (a² − z²v_a) ≤ 0.
    quad = b * b - z2 * vb
    if quad <= 0.0:
        return FiellerInterval(None, None, unbounded=True)
    lin = a * b - z2 * vab
    const = a * a - z2 * va
    discriminant = lin * lin - quad * const
    # With quad > 0 the discriminant is z²·[(a²v_b + b²v_a − 2ab·v_ab) − z²(v_a·v_b − v_ab²)] ≥ 0.
    root = math.sqrt(max(discriminant, 0.0))
    try:
        low = math.ldexp((lin - root) / quad, ea - eb)
        high = math.ldexp((lin + root) / quad, ea - eb)
    except OverflowError:
        return FiellerInterval(None, None, unbounded=True)
    return FiellerInterval(low, high, unbounded=False)


def _binary_exponent(magnitude: float) -> int:
    """``e`` with ``2^(e−1) ≤ magnitude < 2^e`` (0 for 0), so ``magnitude / 2^e`` lies in [0.5, 1)."""
    return math.frexp(magnitude)[1]


@dataclass(frozen=True)
class RelativeLift:
    """Relative lift treatment/holdout − 1.

    ``estimate`` is None when the holdout mean is ≤ 0. ``ci_low``/``ci_high``/``p_value`` come from the
    delta method on the log ratio (``std_error_log`` is the SE of log ratio) and are None when either
    mean is ≤ 0 or both standard errors are 0. ``fieller`` is Fieller's interval for the same quantity
    (ratio interval − 1), None when the estimate is.
    """

    estimate: float | None
    std_error_log: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    fieller: FiellerInterval | None
    warnings: tuple[str, ...] = ()

    @classmethod
    def undefined(cls, reason: str) -> RelativeLift:
        """A relative lift that cannot be computed, with ``reason`` as its only warning."""
        return cls(
            estimate=None, std_error_log=None, ci_low=None, ci_high=None, p_value=None, fieller=None, warnings=(reason,)
        )


def relative_lift(
    treatment_mean: float,
    treatment_std_error: float,
    holdout_mean: float,
    holdout_std_error: float,
    *,
    alpha: float = 0.05,
) -> RelativeLift:
    """Relative lift of two independent means by the delta method on the log ratio, plus Fieller."""
    if not holdout_mean > 0.0:
        return RelativeLift.undefined(
            f"The holdout mean is {holdout_mean:g}, so a relative lift (treatment ÷ holdout − 1) is undefined."
        )
    _check_estimates(("treatment_mean", treatment_mean))
    _check_std_errors(("treatment_std_error", treatment_std_error), ("holdout_std_error", holdout_std_error))
    ratio = treatment_mean / holdout_mean
    if not math.isfinite(ratio):
        return RelativeLift.undefined(
            f"The holdout mean ({holdout_mean:g}) is so small next to the treatment mean "
            f"({treatment_mean:g}) that their ratio exceeds the range of a double."
        )
    log_ratio = _log_ratio_interval(treatment_mean, treatment_std_error, holdout_mean, holdout_std_error, alpha)
    warnings: list[str] = []
    fieller = fieller_ratio_interval(treatment_mean, treatment_std_error, holdout_mean, holdout_std_error, alpha=alpha)
    if fieller.unbounded:
        warnings.append(
            "The holdout mean is not significantly different from 0, so Fieller's interval for the "
            "relative lift is unbounded."
        )
    else:
        assert fieller.ci_low is not None and fieller.ci_high is not None
        fieller = FiellerInterval(fieller.ci_low - 1.0, fieller.ci_high - 1.0, unbounded=False)
    std_error_log, ci_low, ci_high, p_value = log_ratio
    if ci_low is not None and ci_high is None:
        warnings.append("The relative lift is so uncertain that its interval has no finite upper bound.")
    if ci_low is None:
        if not treatment_mean > 0.0:
            warnings.append(
                f"The treatment mean is {treatment_mean:g}; the log-ratio interval for the relative "
                "lift needs both means above 0."
            )
        else:
            warnings.append("Neither arm shows any variation, so the relative lift has no interval.")
    return RelativeLift(
        estimate=ratio - 1.0,
        std_error_log=std_error_log,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=p_value,
        fieller=fieller,
        warnings=tuple(warnings),
    )


def _log_ratio_interval(
    treatment_mean: float, treatment_std_error: float, holdout_mean: float, holdout_std_error: float, alpha: float
) -> tuple[float | None, float | None, float | None, float | None]:
    """``(se_log, ci_low, ci_high, p_value)`` of :func:`log_ratio_arrays` for one pair with a positive
    holdout mean, in a form that stays finite at the extremes of float64: ``log ρ = log ȳ_T − log ȳ_H``,
    ``se_log = hypot(SE_T/ȳ_T, SE_H/ȳ_H)`` (no squares), and a bound whose ``exp`` is beyond the range of
    a double is None. All None when ``ȳ_T ≤ 0`` or ``se_log = 0``; ``se_log`` is None when infinite."""
    if not treatment_mean > 0.0:
        return None, None, None, None
    z_crit = z_critical(alpha)
    log_ratio = math.log(treatment_mean) - math.log(holdout_mean)
    se_log = math.hypot(treatment_std_error / treatment_mean, holdout_std_error / holdout_mean)
    if not se_log > 0.0:
        return se_log, None, None, None
    half = z_crit * se_log
    return (
        _finite_or_none(se_log),
        _expm1_or_none(log_ratio - half),
        _expm1_or_none(log_ratio + half),
        two_sided_p_value(log_ratio / se_log),
    )


def _expm1_or_none(x: float) -> float | None:
    try:
        return _finite_or_none(math.expm1(x))
    except OverflowError:
        return None


# ---------------------------------------------------------------------------------------------------
# Incremental outcome, iROAS, cost per incremental conversion, MDE.


@dataclass(frozen=True)
class ScaledEstimate:
    """An estimate with interval obtained by scaling the absolute lift by a positive constant."""

    estimate: float
    std_error: float
    ci_low: float | None
    ci_high: float | None
    p_value: float | None


def _scale(lift: AbsoluteLift | ScaledEstimate, factor: float) -> ScaledEstimate:
    return ScaledEstimate(
        estimate=lift.estimate * factor,
        std_error=lift.std_error * factor,
        ci_low=None if lift.ci_low is None else lift.ci_low * factor,
        ci_high=None if lift.ci_high is None else lift.ci_high * factor,
        p_value=lift.p_value,
    )


def incremental_outcome(lift: AbsoluteLift, treatment_units: int) -> ScaledEstimate:
    """Incremental conversions (or metric total) in the treated arm: Δ·n_T, interval scaled alike."""
    if isinstance(treatment_units, bool) or not isinstance(treatment_units, int) or treatment_units <= 0:
        raise InvalidProblem("treatment.units", "must be a positive whole number")
    scaled = _scale(lift, float(treatment_units))
    figures = (scaled.estimate, scaled.std_error, scaled.ci_low, scaled.ci_high)
    if not all(math.isfinite(x) for x in figures if x is not None):
        raise InvalidProblem("treatment.units", "times the lift (or a bound of its interval) exceeds the double range")
    return scaled


def _validate_money(value: float, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidProblem(path, "must be a finite number")
    if value < 0.0:
        raise InvalidProblem(path, "must not be negative")
    return float(value)


def iroas(incremental: ScaledEstimate, *, spend: float, value_per_unit: float = 1.0) -> ScaledEstimate | None:
    """Incremental return on ad spend: incremental·value_per_unit / spend, interval scaled alike.

    ``value_per_unit`` is the value of one incremental conversion for a proportion metric and 1 for a
    revenue (mean) metric, whose incremental total already is money. Returns None when spend is 0.
    """
    spend = _validate_money(spend, "spend")
    value = _validate_money(value_per_unit, "value_per_conversion")
    if value == 0.0:
        raise InvalidProblem("value_per_conversion", "must be greater than 0")
    if spend == 0.0:
        return None
    scaled = _scale(incremental, value / spend)
    bounds = (scaled.estimate, scaled.std_error, scaled.ci_low, scaled.ci_high)
    if not all(math.isfinite(x) for x in bounds if x is not None):
        return None  # spend so small next to the value that the ratio overflows: no usable iROAS
    return scaled


@dataclass(frozen=True)
class CostPerIncremental:
    """spend / incremental conversions with the interval from inverting the incremental interval.

    ``estimate`` is None when the incremental estimate is ≤ 0. A bound is None when the incremental
    interval reaches 0 on that side (``unbounded`` is then True): e.g. incremental interval [−5, 40]
    with spend 1000 gives cost interval [25, None].
    """

    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    unbounded: bool
    warnings: tuple[str, ...] = ()


_COST_OUT_OF_RANGE = (
    "Spend is so large next to the incremental conversions that the cost per incremental conversion "
    "(or a bound of its interval) exceeds the range of a double."
)


def cost_per_incremental(incremental: ScaledEstimate, *, spend: float) -> CostPerIncremental | None:
    """Cost per incremental conversion; None when spend is 0."""
    spend = _validate_money(spend, "spend")
    if spend == 0.0:
        return None
    warnings: list[str] = []
    estimate: float | None = None
    if incremental.estimate > 0.0:
        estimate = _finite_or_none(spend / incremental.estimate)
        if estimate is None:
            warnings.append(_COST_OUT_OF_RANGE)
    else:
        warnings.append(
            "No incremental conversions were measured, so the cost per incremental conversion is undefined."
        )
    low, high = incremental.ci_low, incremental.ci_high
    if low is None or high is None:
        return CostPerIncremental(estimate, None, None, unbounded=True, warnings=tuple(warnings))
    cost_low = spend / high if high > 0.0 else None
    cost_high = spend / low if low > 0.0 else None
    if not all(math.isfinite(x) for x in (cost_low, cost_high) if x is not None):
        warnings.append(_COST_OUT_OF_RANGE)
        return CostPerIncremental(estimate, None, None, unbounded=True, warnings=tuple(warnings))
    unbounded = cost_high is None
    if unbounded:
        warnings.append(
            "The interval for incremental conversions includes 0, so the cost per incremental "
            "conversion has no upper bound."
        )
    return CostPerIncremental(estimate, cost_low, cost_high, unbounded=unbounded, warnings=tuple(warnings))


def minimum_detectable_effect(std_error: float, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """(z_{1−α/2} + z_{power})·SE: the true lift a two-sided test at level α detects with this power."""
    validate_probability(power, "power")
    if not math.isfinite(std_error) or std_error < 0.0:
        raise InvalidProblem("std_error", "must be a finite number ≥ 0")
    return (z_critical(alpha) + float(special.ndtri(power))) * std_error
