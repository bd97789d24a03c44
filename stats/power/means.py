"""Two means: the pooled-variance two-sample t-test with the noncentral t distribution (Cohen 1988, ch. 2).

Two vectorised kernels hold the formulas, :func:`t_power_array` (power at given arms) and
:func:`t_mde_array` (the MDE at given arms); the scalar functions and the curves call them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final

import numpy as np
from scipy import special

from stats.errors import InvalidProblem
from stats.power.inputs import (
    MAX_TOTAL_UNITS,
    MIN_UNITS_PER_ARM_MEAN,
    Alternative,
    FloatArray,
    check_alpha,
    check_alternative,
    check_arms,
    check_mde,
    check_power,
    check_r_squared,
    check_std_dev,
    norm_isf,
    split_ratio,
    tail_alpha,
)
from stats.power.root_finding import brent_root

_SOLVER_MAX_ITER: Final = 60


def _nct_cdf(df: FloatArray | float, nc: FloatArray | float, t: FloatArray | float) -> FloatArray:
    """Noncentral-t cdf ``T_{ν,δ}(t)`` (``scipy.special.nctdtr``).

    scipy returns NaN deep in the tails (e.g. ``ν = 100, δ = 10, t = −1.96``, true value < 1e-25);
    there the normal approximation of Abramowitz & Stegun 26.7.10,
    ``Φ((t (1 − 1/(4ν)) − δ) / √(1 + t²/(2ν)))``, fills in so no NaN reaches the caller.
    """
    value = np.asarray(special.nctdtr(df, nc, t), dtype=np.float64)
    bad = np.isnan(value)
    if bad.any():
        approx = special.ndtr((t * (1.0 - 0.25 / df) - nc) / np.sqrt(1.0 + t * t / (2.0 * df)))
        value = np.where(bad, approx, value)
    return value


def t_rejection_probability(
    df: FloatArray | float, nc: FloatArray | float, crit: FloatArray | float, two_sided: bool
) -> FloatArray:
    """``P(T' > t*) [+ P(T' < −t*)]`` for ``T' ~ t_{ν,δ}``: statsmodels' ``ttest_power``.

    statsmodels computes the near tail as ``1 − T_{ν,δ}(t*)``, which scipy returns as NaN for
    large ``δ`` (power ≈ 1); the reflection ``T_{ν,−δ}(−t*)`` is the same number (to 1e-16
    where both are finite) and stays finite.
    """
    power = _nct_cdf(df, -nc, -crit)
    if two_sided:
        power = power + _nct_cdf(df, nc, -crit)
    return np.minimum(power, 1.0)


def t_power_array(
    effect_size: float, n_treatment: FloatArray | float, n_holdout: FloatArray | float, alpha: float, alternative: str
) -> FloatArray:
    """Noncentral-t power of the pooled two-sample t-test at each ``(n_treatment, n_holdout)``; no input checks.

    ``ν = n_t + n_h − 2``, ``δ = d √(n_t n_h / (n_t + n_h))``, ``t* = t_{1−α', ν}``, power as in
    :func:`t_rejection_probability`.
    """
    n_treatment = np.asarray(n_treatment, dtype=np.float64)
    df = n_treatment + n_holdout - 2.0
    nc = effect_size * np.sqrt(n_treatment * n_holdout / (n_treatment + n_holdout))
    crit = -np.asarray(special.stdtrit(df, tail_alpha(alpha, alternative)), dtype=np.float64)
    return t_rejection_probability(df, nc, crit, alternative == "two-sided")


def effect_size(mde_absolute: float, std_dev: float, r_squared: float) -> float:
    """Cohen's ``d = mde_absolute / (std_dev √(1 − R²))``, divided in that order so that a tiny
    ``std_dev √(1 − R²)`` cannot underflow to a zero divisor; ``d`` may be 0 (underflow) or ``inf``
    (overflow), the limits the callers handle."""
    return mde_absolute / std_dev / math.sqrt(1.0 - r_squared)


def power_two_means(
    mde_absolute: float,
    std_dev: float,
    n_treatment: float,
    n_holdout: float,
    alpha: float,
    alternative: Alternative = "two-sided",
    r_squared: float = 0.0,
) -> float:
    """Power of the pooled-variance two-sample t-test (Cohen 1988, ch. 2).

    With ``d = mde_absolute / (std_dev √(1 − R²))``, ``ν = n_t + n_h − 2``,
    ``δ = d √(n_t n_h / (n_t + n_h))`` and ``t* = t_{1−α', ν}`` (``α' = α/2`` two-sided)::

        power = 1 − T_{ν,δ}(t*)  [+ T_{ν,δ}(−t*) two-sided]

    where ``T_{ν,δ}`` is the noncentral-t cdf (``scipy.special.nctdtr``). Identical to
    ``statsmodels.stats.power.TTestIndPower().power(d, nobs1=n_t, alpha=α,
    ratio=n_h/n_t, alternative=...)``; for ``"smaller"`` statsmodels takes ``-d`` and the
    numbers are the same by symmetry. The near tail is evaluated as ``T_{ν,−δ}(−t*)``, the same
    number, because scipy returns NaN for ``1 − T_{ν,δ}(t*)`` when power is close to 1 (where
    statsmodels then returns NaN too).

    Example (Cohen 1988, ch. 2: d = 0.5, 64 per group, α = 0.05 two-sided → power 0.80)::

        >>> from stats.power import power_two_means
        >>> round(power_two_means(0.5, 1.0, 64, 64, 0.05), 2)
        0.8
    """
    check_std_dev(std_dev)
    check_mde(mde_absolute)
    check_alternative(alternative)
    check_alpha(alpha)
    check_r_squared(r_squared)
    check_arms(n_treatment, n_holdout, MIN_UNITS_PER_ARM_MEAN)
    return float(
        t_power_array(effect_size(mde_absolute, std_dev, r_squared), n_treatment, n_holdout, alpha, alternative)
    )


def sample_size_two_means(
    mde_absolute: float,
    std_dev: float,
    power: float,
    alpha: float,
    holdout_fraction: float = 0.5,
    alternative: Alternative = "two-sided",
    r_squared: float = 0.0,
) -> tuple[float, float]:
    """Unrounded ``(n_treatment, n_holdout)`` at which :func:`power_two_means` equals ``power``.

    Starts from the normal approximation (Cohen 1988, ch. 2, generalised to unequal arms)::

        n_t r / (1 + r) = ((z_{1−α'} + z_{power}) / d)²,    r = h / (1 − h)

    and refines it with secant steps on the exact noncentral-t power (usually 4 evaluations),
    falling back to Brent's method on an expanding bracket. This solves the same equation as
    ``TTestIndPower().solve_power(effect_size=d, nobs1=None, ratio=r, ...)``. Each arm has at
    least two units; when that minimum already reaches the power it is returned.
    """
    check_std_dev(std_dev)
    check_mde(mde_absolute)
    check_alternative(alternative)
    check_alpha(alpha)
    check_power(power, alpha)
    check_r_squared(r_squared)
    ratio, n_min = split_ratio(holdout_fraction, MIN_UNITS_PER_ARM_MEAN)
    d = effect_size(mde_absolute, std_dev, r_squared)

    def gap(n1: float) -> float:
        return float(t_power_array(d, n1, n1 * ratio, alpha, alternative)) - power

    z_alpha = norm_isf(tail_alpha(alpha, alternative))
    z_sum = z_alpha + norm_isf(1.0 - power)
    # The t test needs more units than the z test, whose total is (z_sum / d)² (1 + r)² / r: an
    # effect below the d at which that reaches MAX_TOTAL_UNITS is refused before dividing by d², which
    # would overflow (or divide by an underflowed zero) for the tiny effects this excludes.
    if not d > z_sum * (1.0 + ratio) / math.sqrt(ratio * MAX_TOTAL_UNITS):
        raise InvalidProblem("mde", "needs more units than any population holds: too small for this std_dev")
    x0 = max((z_sum / d) ** 2 * (1.0 + ratio) / ratio, n_min)
    f0 = gap(x0)
    if x0 == n_min and f0 >= 0.0:
        return n_min, n_min * ratio
    # The t test needs slightly more units than the z test. With t* ≈ z + (z³ + z) / (4ν)
    # (Cornish-Fisher), δ must grow by that much: about (z³ + z) / (2 (1 + r) (z + z_power))
    # treatment units. A good second point saves a secant step.
    step = (z_alpha**3 + z_alpha) / (2.0 * (1.0 + ratio) * z_sum)
    x1 = x0 + min(max(step, 1e-6 * x0), x0)
    f1 = gap(x1)
    for _ in range(_SOLVER_MAX_ITER):
        if f1 == f0:
            break
        x2 = x1 - f1 * (x1 - x0) / (f1 - f0)
        if not (math.isfinite(x2) and x2 >= n_min):
            break
        if abs(x2 - x1) <= 1e-10 * x2:  # secant converges superlinearly: this step is the last
            return x2, x2 * ratio
        x0, f0 = x1, f1
        x1, f1 = x2, gap(x2)
    return _brent_sample_size(gap, n_min, ratio)


def _brent_sample_size(gap: Callable[[float], float], n_min: float, ratio: float) -> tuple[float, float]:
    """Fallback: Brent solve of ``gap(n1) = 0`` on ``[n_min, ∞)`` with an expanding bracket."""
    gap_low = gap(n_min)
    if gap_low >= 0.0:
        return n_min, n_min * ratio
    high = max(2.0 * n_min, 16.0)
    gap_high = gap(high)
    while gap_high < 0.0:
        high *= 4.0
        if high > MAX_TOTAL_UNITS:
            raise InvalidProblem("mde", "needs more units than any population holds")
        gap_high = gap(high)
    root = brent_root(gap, n_min, high, gap_low, gap_high, rtol=1e-13)
    return root, root * ratio


def _t_noncentrality_array(df: FloatArray, crit: FloatArray, power: float, two_sided: bool) -> FloatArray:
    """Noncentralities ``δ`` at which :func:`t_rejection_probability` equals ``power``.

    ``scipy.special.nctdtrinc`` inverts the near tail (to ~1e-8 in probability); secant steps on
    the exact power (far tail included) polish it to ~1e-12. Entries where that fails are solved
    by Brent's method one at a time.
    """

    def gap(delta: FloatArray) -> FloatArray:
        return t_rejection_probability(df, delta, crit, two_sided) - power

    x0 = np.asarray(special.nctdtrinc(df, 1.0 - power, crit), dtype=np.float64)
    x0 = np.where(np.isfinite(x0) & (x0 > 0.0), x0, crit)
    x1 = x0 * (1.0 + 1e-6)
    f0, f1 = gap(x0), gap(x1)
    for _ in range(8):
        moving = (np.abs(f1) > 1e-13) & (f1 != f0)
        if not moving.any():
            break
        step = np.where(moving, f1 * (x1 - x0) / np.where(moving, f1 - f0, 1.0), 0.0)
        x0, f0 = x1, f1
        x1 = x1 - step
        f1 = gap(x1)
    failed = ~((np.abs(f1) <= 1e-11) & (x1 > 0.0))
    for i in np.flatnonzero(failed):
        x1[i] = _t_noncentrality_brent(float(df[i]), float(crit[i]), power, two_sided)
    return x1


def _t_noncentrality_brent(df: float, crit: float, power: float, two_sided: bool) -> float:
    def gap(delta: float) -> float:
        return float(t_rejection_probability(df, delta, crit, two_sided)) - power

    high = 1.0
    gap_high = gap(high)
    while gap_high < 0.0:
        high *= 2.0
        if high > 1e8:
            raise InvalidProblem("power", "cannot be reached by any effect at this sample size")
        gap_high = gap(high)
    return brent_root(gap, 0.0, high, gap(0.0), gap_high, rtol=1e-14)


def mde_two_means(
    std_dev: float,
    n_treatment: float,
    n_holdout: float,
    power: float,
    alpha: float,
    alternative: Alternative = "two-sided",
    r_squared: float = 0.0,
) -> float:
    """The ``mde_absolute`` at which :func:`power_two_means` equals ``power``.

    Solves the noncentrality ``δ`` of the noncentral t (``scipy.special.nctdtrinc``, then secant
    steps on the exact power with the two-sided far tail) and returns
    ``δ / √(n_t n_h / (n_t + n_h)) · std_dev · √(1 − R²)``; the same as
    ``TTestIndPower().solve_power(effect_size=None, nobs1=n_t, ratio=n_h/n_t, ...)``
    times ``std_dev √(1 − R²)`` (Cohen 1988, ch. 2).
    """
    check_std_dev(std_dev)
    check_alternative(alternative)
    check_alpha(alpha)
    check_power(power, alpha)
    check_r_squared(r_squared)
    check_arms(n_treatment, n_holdout, MIN_UNITS_PER_ARM_MEAN)
    mde = t_mde_array(std_dev, np.array([n_treatment]), np.array([n_holdout]), power, alpha, alternative, r_squared)
    return float(mde[0])


def t_mde_array(
    std_dev: float,
    n_treatment: FloatArray,
    n_holdout: FloatArray,
    power: float,
    alpha: float,
    alternative: str,
    r_squared: float,
) -> FloatArray:
    """The ``mde_absolute`` at which :func:`t_power_array` equals ``power``, at each pair of arms; no checks.

    ``δ / √(n_t n_h / (n_t + n_h)) · std_dev · √(1 − R²)`` with ``δ`` from
    :func:`_t_noncentrality_array`.
    """
    df = n_treatment + n_holdout - 2.0
    crit = -np.asarray(special.stdtrit(df, tail_alpha(alpha, alternative)), dtype=np.float64)
    nc = _t_noncentrality_array(df, crit, power, alternative == "two-sided")
    scaled = nc / np.sqrt(n_treatment * n_holdout / (n_treatment + n_holdout)) * math.sqrt(1.0 - r_squared)
    with np.errstate(over="ignore"):
        mde: FloatArray = scaled * std_dev
    if not np.all(np.isfinite(mde)):
        raise InvalidProblem("metric.std_dev", "so large that the detectable effect exceeds the range of a double")
    return mde
