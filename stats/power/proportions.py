"""Two proportions: the two-sample z-test with the pooled variance under H0, unpooled under H1.

One vectorised kernel, :func:`proportion_power_array`, holds the power formula; the scalar
:func:`power_two_proportions`, the MDE solve and the curves all call it.
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
from scipy import special

from stats.errors import InvalidProblem
from stats.power.inputs import (
    MAX_TOTAL_UNITS,
    MIN_UNITS_PER_ARM_PROPORTION,
    Alternative,
    FloatArray,
    check_alpha,
    check_alternative,
    check_arms,
    check_power,
    check_proportion_inputs,
    check_r_squared,
    norm_isf,
    normal_quantile,
    split_ratio,
    tail_alpha,
)
from stats.power.root_finding import brent_root

_Values = TypeVar("_Values", float, FloatArray)


#: Standard normal quantiles already computed, by probability: a design tool asks for a handful of α and
#: power values (0.05, 0.8, ...) over and over, and a dictionary lookup is half the quantile's cost.
_QUANTILES: dict[float, float] = {}
_QUANTILES_KEPT = 1024


def remember_standard_normal_quantile(probability: float) -> float:
    """``Φ⁻¹(probability)`` for ``0 < probability < 1``, kept in :data:`_QUANTILES` (emptied when full, so
    requests with ever-new probabilities cannot grow it)."""
    if len(_QUANTILES) >= _QUANTILES_KEPT:
        _QUANTILES.clear()
    quantile = _QUANTILES[probability] = normal_quantile(probability, 0.0, 1.0)
    return quantile


def proportion_stds(p1: _Values, p0: float, ratio: _Values, variance_factor: float) -> tuple[_Values, _Values]:
    """Standard deviations of ``p1_hat - p0_hat`` times ``sqrt(n_treatment)``.

    Under H0 the pooled rate ``(p1 + ratio * p0) / (1 + ratio)`` is used for both arms; under H1
    each arm has its own rate (statsmodels' ``_std_2prop_power``). ``ratio = n_holdout /
    n_treatment``. CUPED multiplies both variances by ``variance_factor = 1 - R²``. Floats stay
    floats (``** 0.5``, not ``np.sqrt``): the closed-form sample size is a 1.5 µs computation.

    The variance of a rate near 0 is about the rate itself, so ``s = p1 + p0`` is factored out
    (``σ = √s · √(v / s) · √(1 − R²)``): for subnormal rates or an ``R²`` near 1 the product of the
    factors would underflow to a zero standard deviation, and a zero-width test is not the answer.
    """
    scale = p1 + p0
    pooled = (p1 + ratio * p0) / (1.0 + ratio)
    common = scale**0.5 * variance_factor**0.5
    std_null = common * (pooled / scale * (1.0 - pooled) * (1.0 + 1.0 / ratio)) ** 0.5
    std_alt = common * (p1 / scale * (1.0 - p1) + p0 / scale * (1.0 - p0) / ratio) ** 0.5
    return std_null, std_alt


def proportion_power_array(
    baseline: float,
    effect: FloatArray | float,
    n_treatment: FloatArray | float,
    n_holdout: FloatArray | float,
    alpha: float,
    alternative: Alternative,
    r_squared: float,
) -> FloatArray:
    """Power of the z-test at each ``(effect, n_treatment, n_holdout)`` (broadcast); no input checks.

    ``effect`` is the magnitude of the difference in the tested direction: ``p1 = p0 + effect``,
    or ``p0 - effect`` for ``"smaller"``. With σ0, σ1 from :func:`proportion_stds` at
    ``r = n_holdout / n_treatment`` and ``z = z_{1−α'}``::

        power = Φ((e √n_treatment − z σ0) / σ1)  [+ Φ((−e √n_treatment − z σ0) / σ1) two-sided]
    """
    effect = np.asarray(effect, dtype=np.float64)
    n_treatment = np.asarray(n_treatment, dtype=np.float64)
    sign = -1.0 if alternative == "smaller" else 1.0
    std_null, std_alt = proportion_stds(
        baseline + sign * effect, baseline, np.asarray(n_holdout, dtype=np.float64) / n_treatment, 1.0 - r_squared
    )
    shift = effect * np.sqrt(n_treatment)
    crit = norm_isf(tail_alpha(alpha, alternative))
    power: FloatArray = special.ndtr(_standardised(shift - crit * std_null, std_alt))
    if alternative == "two-sided":
        power = power + special.ndtr(_standardised(-shift - crit * std_null, std_alt))
    return np.minimum(power, 1.0)


def _standardised(margin: FloatArray, std_alt: FloatArray) -> FloatArray:
    """``margin / σ1``; where ``σ1`` underflowed to 0 (a treatment rate rounded to 0 or 1 beside a
    subnormal holdout rate) its limit ``±∞`` with the sign of the margin, so ``Φ`` sees no 0/0."""
    positive = std_alt > 0.0
    return np.where(positive, margin / np.where(positive, std_alt, 1.0), np.copysign(np.inf, margin))


def power_two_proportions(
    baseline: float,
    mde_absolute: float,
    n_treatment: float,
    n_holdout: float,
    alpha: float,
    alternative: Alternative = "two-sided",
    r_squared: float = 0.0,
) -> float:
    """Power of the two-sample z-test for proportions (pooled H0 variance, unpooled H1 variance).

    With ``p0 = baseline`` (holdout), ``p1 = p0 ± mde_absolute`` (treatment; minus for
    ``"smaller"``), ``r = n_holdout / n_treatment``, ``p̄ = (p1 + r p0) / (1 + r)``,
    ``σ0 = sqrt(p̄(1−p̄)(1 + 1/r)(1−R²))``, ``σ1 = sqrt((p1(1−p1) + p0(1−p0)/r)(1−R²))``,
    ``e = mde_absolute`` and ``z = z_{1−α'}`` (``α' = α/2`` two-sided, else ``α``)::

        power = Φ((e √n_treatment − z σ0) / σ1)  [+ Φ((−e √n_treatment − z σ0) / σ1) two-sided]

    Identical to ``statsmodels.stats.proportion.power_proportions_2indep(diff=±e, prop2=p0,
    nobs1=n_treatment, ratio=r, alpha=α, alternative=...)`` (``normal_power_het``), which also
    adds the far tail for two-sided tests. With ``r_squared = 0`` it is statsmodels' number.
    """
    check_proportion_inputs(baseline, mde_absolute, alternative)
    check_alpha(alpha)
    check_r_squared(r_squared)
    check_arms(n_treatment, n_holdout, MIN_UNITS_PER_ARM_PROPORTION)
    return float(proportion_power_array(baseline, mde_absolute, n_treatment, n_holdout, alpha, alternative, r_squared))


def sample_size_two_proportions(
    baseline: float,
    mde_absolute: float,
    power: float,
    alpha: float,
    holdout_fraction: float = 0.5,
    alternative: Alternative = "two-sided",
    r_squared: float = 0.0,
) -> tuple[float, float]:
    """Unrounded ``(n_treatment, n_holdout)`` for the z-test for proportions, with
    ``n_holdout = n_treatment * h / (1 − h)``.

    The closed form of ``statsmodels.stats.proportion.samplesize_proportions_2indep_onetail``
    (``normal_sample_size_one_tail``), with σ0, σ1, e as in :func:`power_two_proportions`::

        n_treatment = ((z_{1−α'} σ0 + z_{power} σ1) / e)²,    α' = α/2 two-sided, else α

    It sets the near rejection tail to the target power. For a two-sided test the far tail
    (rejecting in the wrong direction) is left out, as statsmodels does, so the power of the
    two-sided test at this ``n`` exceeds the target by that tail,
    ``Φ((−e√n − z σ0)/σ1)`` — below 1e-3 for power ≥ 0.5 and usually below 1e-6. Solving the
    two-sided power equation exactly would give an ``n`` smaller by at most ~0.2% (at power 0.5;
    less at higher power); we keep statsmodels' answer, which matches the reference exactly and
    guarantees that power at the rounded-up size is at least the target. :func:`mde_two_proportions`
    inverts the full two-sided power, so its MDE at this ``n`` is at most the input MDE.

    Example (JMP 13.2 documentation, "Two Sample Proportions": 6% vs 8%, α = 0.05 two-sided,
    power 0.8, equal arms → 2554 per group; unrounded 2553.63 per arm)::

        >>> import math
        >>> from stats.power import sample_size_two_proportions
        >>> [math.ceil(n) for n in sample_size_two_proportions(0.06, 0.02, 0.8, 0.05)]
        [2554, 2554]

    The answer is at least one unit per arm; when that minimum already reaches the power
    (huge effects) the minimum is returned.
    """
    p1 = baseline - mde_absolute if alternative == "smaller" else baseline + mde_absolute
    # One comparison chain on the way every valid call takes; the checks one by one, which name what is
    # wrong, only when it fails (calling them on every call was a third of its time).
    if not (
        0.0 < baseline < 1.0
        and mde_absolute > 0.0
        and alternative in ("two-sided", "larger", "smaller")
        and 0.0 < p1 < 1.0
        and 0.0 < alpha < power < 1.0
        and 0.0 <= r_squared < 1.0
        and 0.0 < holdout_fraction < 1.0
    ):
        check_proportion_inputs(baseline, mde_absolute, alternative)
        check_alpha(alpha)
        check_power(power, alpha)
        check_r_squared(r_squared)
        split_ratio(holdout_fraction, MIN_UNITS_PER_ARM_PROPORTION)
    # split_ratio's arithmetic, for one unit per arm at least (it refuses the splits this check catches).
    ratio = holdout_fraction / (1.0 - holdout_fraction)
    n_min = MIN_UNITS_PER_ARM_PROPORTION if ratio >= 1.0 else MIN_UNITS_PER_ARM_PROPORTION / ratio
    if not n_min * (1.0 + ratio) <= MAX_TOTAL_UNITS:
        split_ratio(holdout_fraction, MIN_UNITS_PER_ARM_PROPORTION)
    std_null, std_alt = proportion_stds(p1, baseline, ratio, 1.0 - r_squared)
    # z_{1-α'} and z_power: inside (0, 1) once checked, as the quantile needs, but for α/2 of a subnormal α.
    # Conditional expressions, not max(): a builtin call is a tenth of this function's time.
    tail = 0.5 * alpha if alternative == "two-sided" else alpha
    z_tail = _QUANTILES.get(tail)
    if z_tail is None:
        z_tail = remember_standard_normal_quantile(tail) if tail > 0.0 else -norm_isf(tail)
    z_power = _QUANTILES.get(power)
    if z_power is None:
        z_power = remember_standard_normal_quantile(power)
    sqrt_n = (z_power * std_alt - z_tail * std_null) / mde_absolute
    sqrt_n = sqrt_n if sqrt_n > 0.0 else 0.0
    # A tiny MDE makes sqrt_n overflow-sized (or inf): its square is then inf, never below the limit.
    n_treatment = sqrt_n * sqrt_n
    if not n_treatment <= MAX_TOTAL_UNITS / (1.0 + ratio):
        raise InvalidProblem("mde", f"needs more than {MAX_TOTAL_UNITS:g} units: too small to detect")
    n_treatment = n_treatment if n_treatment > n_min else n_min
    return n_treatment, n_treatment * ratio


def mde_two_proportions(
    baseline: float,
    n_treatment: float,
    n_holdout: float,
    power: float,
    alpha: float,
    alternative: Alternative = "two-sided",
    r_squared: float = 0.0,
) -> float:
    """The ``mde_absolute`` at which :func:`power_two_proportions` equals ``power``.

    The pooled H0 variance depends on the effect, so there is no closed form: Brent's method
    (as ``scipy.optimize.brentq``) solves ``power_two_proportions(e) = power`` on
    ``e ∈ (0, e_max)``, where ``e_max = 1 − p0`` for increases and ``p0`` for ``"smaller"``
    (the treatment rate must stay a probability). Power at ``e → 0`` is ``α``, below the target.
    If even ``e_max`` cannot reach the power the sample is too small and
    ``InvalidProblem("sample_size")`` is raised.
    """
    if not 0.0 < baseline < 1.0:
        raise InvalidProblem("metric.baseline", "a conversion rate must be strictly between 0 and 1")
    check_alternative(alternative)
    check_alpha(alpha)
    check_power(power, alpha)
    check_r_squared(r_squared)
    check_arms(n_treatment, n_holdout, MIN_UNITS_PER_ARM_PROPORTION)
    ratio = n_holdout / n_treatment
    crit = norm_isf(tail_alpha(alpha, alternative))
    sqrt_n1 = math.sqrt(n_treatment)
    sign = -1.0 if alternative == "smaller" else 1.0
    e_max = baseline if alternative == "smaller" else 1.0 - baseline

    def gap(effect: float) -> float:
        power_at_effect = proportion_power_array(
            baseline, effect, n_treatment, n_holdout, alpha, alternative, r_squared
        )
        return float(power_at_effect) - power

    gap_max = gap(e_max)
    if gap_max <= 0.0:
        raise InvalidProblem(
            "sample_size",
            f"too small to reach power {power:g}: even the largest possible effect "
            f"(a treatment rate of {baseline + sign * e_max:g}) falls short",
        )
    # Power at e = 0 is alpha < power. A normal-approximation guess narrows the bracket.
    low, gap_low, high, gap_high = 0.0, alpha - power, e_max, gap_max
    guess = (
        (crit + norm_isf(1.0 - power))
        * math.sqrt(baseline * (1.0 - baseline) * (1.0 + 1.0 / ratio) * (1.0 - r_squared))
        / sqrt_n1
    )
    if 0.0 < guess < e_max:
        gap_guess = gap(guess)
        if gap_guess < 0.0:
            low, gap_low = guess, gap_guess
        else:
            high, gap_high = guess, gap_guess
    return brent_root(gap, low, high, gap_low, gap_high)
