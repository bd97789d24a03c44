"""Power, sample size and minimum detectable effect (MDE) of a holdout test.

A holdout test splits ``N`` units at random into a treatment arm (share ``1 - h``) and a holdout
arm (share ``h = holdout_fraction``). Given all but one of total sample size, MDE and power, the
functions here solve for the missing one.

Methods (each lower-level function names its formula in its docstring):

* ``proportion`` metrics: the two-sample z-test for two independent proportions with the pooled
  proportion in the variance under H0 and the unpooled variance under H1, exactly as
  ``statsmodels.stats.proportion.power_proportions_2indep`` (statsmodels 0.15) with
  ``prop2 = baseline`` (the holdout rate), ``diff = ±mde_absolute``, ``nobs1 = n_treatment`` and
  ``ratio = n_holdout / n_treatment``; it is the classic formula without continuity correction of
  Fleiss, Levin & Paik (2003), *Statistical Methods for Rates and Proportions*, 3rd ed., ch. 4.
* ``mean`` metrics: the two-sample pooled-variance t-test with the noncentral t distribution,
  exactly as ``statsmodels.stats.power.TTestIndPower`` with effect size
  ``d = mde_absolute / (std_dev * sqrt(1 - r_squared))``, ``nobs1 = n_treatment`` and
  ``ratio = n_holdout / n_treatment`` (Cohen 1988, *Statistical Power Analysis for the Behavioral
  Sciences*, 2nd ed., ch. 2).

Conventions shared by every function:

* The MDE is a positive magnitude. ``"larger"`` and ``"two-sided"`` size the test for an increase
  (treatment rate ``p1 = p0 + mde``); ``"smaller"`` sizes it for a decrease (``p1 = p0 - mde``,
  statsmodels' ``diff = -mde`` with ``alternative="smaller"``). For means the t-test is symmetric,
  so the direction does not change the numbers. For a two-sided proportion test the reported MDE is
  the increase that reaches the power; a decrease of the same size has slightly more power when
  ``p0 < 0.5`` (its variance is smaller), so the figure is the conservative one for the usual
  low-rate metrics.
* Two-sided power counts both rejection tails, as statsmodels does. The MDE is the exact inverse
  of that power function; the proportion sample size is statsmodels' one-tail closed form (see
  :func:`sample_size_two_proportions`), and the t-test sample size the exact inverse.
* CUPED / regression adjustment with ``r_squared = R²`` multiplies the variance of every arm's
  mean by ``1 - R²``. For proportions it scales both the H0 and the H1 variance (so the required
  sample size is exactly ``(1 - R²)`` times the unadjusted one); for means it enters the effect
  size. Degrees of freedom are not reduced for the adjustment.
* Power, MDE and "achieved power" at a total ``N`` use the expected arm sizes ``N (1 - h)`` and
  ``N h`` (units are assigned at random with probability ``h`` to the holdout), so
  :func:`power_curve`, ``solve_for="power"`` and the achieved power of ``solve_for="sample_size"``
  agree at the same ``N``.

Invalid or impossible inputs raise :class:`stats.errors.InvalidProblem` whose ``field`` is the
HTTP name of the input at fault: ``metric``, ``metric.baseline``, ``metric.std_dev``, ``mde``,
``power``, ``alpha``, ``sample_size``, ``sample_sizes`` (curves), ``holdout_fraction``,
``alternative``, ``comparisons``, ``correction``, ``solve_for``,
``variance_reduction.r_squared`` and ``daily_units``. No function returns NaN or infinity.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special  # type: ignore[import-untyped,unused-ignore]

from stats.errors import InvalidProblem

Alternative = Literal["two-sided", "larger", "smaller"]
SolveFor = Literal["sample_size", "mde", "power"]
Correction = Literal["bonferroni", "none"]
FloatArray = NDArray[np.float64]

#: Smallest expected arm size for the z-test for proportions.
MIN_UNITS_PER_ARM_PROPORTION: Final = 1.0
#: Smallest arm size for the t-test (each arm needs a variance estimate).
MIN_UNITS_PER_ARM_MEAN: Final = 2.0
#: Larger designs are refused: no population is that big and floats lose integer precision.
MAX_TOTAL_UNITS: Final = 1e15
#: Below this many expected conversions (or non-conversions) in an arm, the warning fires.
MIN_EXPECTED_EVENTS: Final = 200.0
#: Warn above this duration.
MAX_SENSIBLE_DAYS: Final = 365
#: Warn for power targets at or above this.
HIGH_POWER: Final = 0.99
#: Warn for fewer units per arm than this in a t-test.
SMALL_MEAN_ARM: Final = 30.0

METHOD_PROPORTION: Final = (
    "two-sample z-test for proportions (pooled variance under H0, unpooled under H1), normal approximation"
)
METHOD_MEAN: Final = "two-sample t-test (pooled variance), noncentral t distribution"

_SQRT1_2: Final = math.sqrt(0.5)
_ALTERNATIVES: Final = ("two-sided", "larger", "smaller")
_SOLVER_MAX_ITER: Final = 60


# --------------------------------------------------------------------------------------------
# Public problem / answer types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProportionMetric:
    """A conversion metric; ``baseline`` is the expected holdout conversion rate in (0, 1)."""

    baseline: float


@dataclass(frozen=True)
class MeanMetric:
    """A continuous metric per unit; ``baseline`` is the holdout mean (non-zero, so that the
    relative MDE exists) and ``std_dev`` the standard deviation per unit (> 0)."""

    baseline: float
    std_dev: float


@dataclass(frozen=True)
class HoldoutDesignProblem:
    """Inputs of a holdout-test design; exactly one of sample size, MDE and power is solved for.

    The input solved for is ignored when given. ``sample_size`` is the total number of units
    (treatment + holdout). At most one of ``mde_relative`` (a fraction of the baseline) and
    ``mde_absolute`` may be given. ``r_squared`` is the CUPED variance reduction in [0, 1).
    """

    metric: ProportionMetric | MeanMetric
    solve_for: SolveFor
    alpha: float = 0.05
    power: float | None = 0.8
    mde_relative: float | None = None
    mde_absolute: float | None = None
    sample_size: int | None = None
    holdout_fraction: float = 0.5
    alternative: Alternative = "two-sided"
    comparisons: int = 1
    correction: Correction = "bonferroni"
    r_squared: float = 0.0
    daily_units: float | None = None


@dataclass(frozen=True)
class ArmSizes:
    """Whole numbers of units; ``total == treatment + holdout``."""

    total: int
    treatment: int
    holdout: int


@dataclass(frozen=True)
class HoldoutDesign:
    """The solved design.

    ``sample_size`` rounds each arm up separately when solving for the sample size (both arms at
    least as large as the formula requires, so the realised holdout share differs from
    ``holdout_fraction`` by less than ``1 / total``); when the total is given it is split as
    ``holdout = round(total * h)``. ``sample_size_unrounded`` is ``(treatment, holdout)`` before
    rounding. ``power`` is the achieved power at the reported total when solving for the sample
    size, otherwise the solved or given power. ``expected_conversions`` is
    ``(p1 * treatment, p0 * holdout)`` for proportions, ``None`` for means.
    """

    sample_size: ArmSizes
    sample_size_unrounded: tuple[float, float]
    mde_absolute: float
    mde_relative: float
    power: float
    alpha_per_comparison: float
    duration_days: int | None
    expected_conversions: tuple[float, float] | None
    method: str
    warnings: tuple[str, ...]


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _norm_cdf(x: float) -> float:
    """Standard normal cdf via ``erfc`` (accurate in both tails, ~30 ns)."""
    return 0.5 * math.erfc(-x * _SQRT1_2)


def _norm_isf(q: float) -> float:
    """Upper-tail standard normal quantile ``z`` with ``P(Z > z) = q``; ``scipy.special.ndtri``
    on a float is ~1 µs, faster than ``statistics.NormalDist().inv_cdf`` (~1.5 µs)."""
    return -float(special.ndtri(q))


def _is_real(x: object) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def _finite(x: object, field: str) -> float:
    if not _is_real(x):
        raise InvalidProblem(field, "must be a number")
    value = float(x)  # type: ignore[arg-type]
    if not math.isfinite(value):
        raise InvalidProblem(field, "must be a finite number")
    return value


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise InvalidProblem("alpha", "must be strictly between 0 and 1")


def _check_power(power: float, alpha: float) -> None:
    if not alpha < power < 1.0:
        raise InvalidProblem(
            "power",
            f"must be above the significance level per comparison ({alpha:g}) and below 1",
        )


def _check_r_squared(r_squared: float) -> None:
    if not 0.0 <= r_squared < 1.0:
        raise InvalidProblem("variance_reduction.r_squared", "must be at least 0 and below 1")


def _check_alternative(alternative: str) -> None:
    if alternative not in _ALTERNATIVES:
        raise InvalidProblem("alternative", "must be 'two-sided', 'larger' or 'smaller'")


def _check_holdout_fraction(h: float) -> None:
    if not 0.0 < h < 1.0:
        raise InvalidProblem("holdout_fraction", "must be strictly between 0 and 1")


def _check_arms(n_treatment: float, n_holdout: float, minimum: float) -> None:
    if not (n_treatment >= minimum and n_holdout >= minimum):
        raise InvalidProblem("sample_size", f"each arm needs at least {minimum:g} units for this test")
    if not (math.isfinite(n_treatment) and math.isfinite(n_holdout)):
        raise InvalidProblem("sample_size", "must be finite")


def _tail_alpha(alpha: float, alternative: str) -> float:
    return 0.5 * alpha if alternative == "two-sided" else alpha


def _treatment_rate(baseline: float, mde_absolute: float, alternative: str) -> float:
    """``p1``: the treatment rate the test is sized for (an increase unless ``"smaller"``)."""
    p1 = baseline - mde_absolute if alternative == "smaller" else baseline + mde_absolute
    if not 0.0 < p1 < 1.0:
        raise InvalidProblem(
            "mde",
            f"moves the treatment rate to {p1:g}, outside (0, 1); the MDE must keep the rate a probability",
        )
    return p1


def _check_proportion_inputs(baseline: float, mde_absolute: float, alternative: str) -> float:
    if not 0.0 < baseline < 1.0:
        raise InvalidProblem("metric.baseline", "a conversion rate must be strictly between 0 and 1")
    if not mde_absolute > 0.0:
        raise InvalidProblem("mde", "must be positive (its direction is set by 'alternative')")
    _check_alternative(alternative)
    return _treatment_rate(baseline, mde_absolute, alternative)


def _check_std_dev(std_dev: float) -> None:
    if not (std_dev > 0.0 and math.isfinite(std_dev)):
        raise InvalidProblem("metric.std_dev", "must be a positive, finite number")


def _brent_root(
    f: Callable[[float], float],
    x_a: float,
    x_b: float,
    f_a: float,
    f_b: float,
    rtol: float = 4e-15,
    xtol: float = 1e-300,
) -> float:
    """Root of ``f`` in ``[x_a, x_b]`` (``f_a``, ``f_b`` of opposite signs) by Brent's method.

    The algorithm of ``scipy.optimize.brentq`` (Brent 1973, ch. 4), in plain Python because
    scipy's wrapper costs ~200 µs per call here, ten times the work of the iterations.
    """
    x_pre, x_cur, f_pre, f_cur = x_a, x_b, f_a, f_b
    x_blk = f_blk = s_pre = s_cur = 0.0
    if f_pre == 0.0:
        return x_pre
    for _ in range(200):
        if f_cur == 0.0:
            return x_cur
        if (f_pre < 0.0) != (f_cur < 0.0):
            x_blk, f_blk = x_pre, f_pre
            s_pre = s_cur = x_cur - x_pre
        if abs(f_blk) < abs(f_cur):
            x_pre, x_cur, x_blk = x_cur, x_blk, x_cur
            f_pre, f_cur, f_blk = f_cur, f_blk, f_cur
        delta = 0.5 * (xtol + rtol * abs(x_cur))
        s_bis = 0.5 * (x_blk - x_cur)
        if f_cur == 0.0 or abs(s_bis) < delta:
            return x_cur
        if abs(s_pre) > delta and abs(f_cur) < abs(f_pre):
            if x_pre == x_blk:  # secant
                s_try = -f_cur * (x_cur - x_pre) / (f_cur - f_pre)
            else:  # inverse quadratic interpolation
                d_pre = (f_pre - f_cur) / (x_pre - x_cur)
                d_blk = (f_blk - f_cur) / (x_blk - x_cur)
                s_try = -f_cur * (f_blk * d_blk - f_pre * d_pre) / (d_blk * d_pre * (f_blk - f_pre))
            if 2.0 * abs(s_try) < min(abs(s_pre), 3.0 * abs(s_bis) - delta):
                s_pre, s_cur = s_cur, s_try
            else:
                s_pre = s_cur = s_bis
        else:
            s_pre = s_cur = s_bis
        x_pre, f_pre = x_cur, f_cur
        x_cur += s_cur if abs(s_cur) > delta else (delta if s_bis > 0.0 else -delta)
        f_cur = f(x_cur)
    return x_cur


# --------------------------------------------------------------------------------------------
# Two proportions: z-test, pooled variance under H0, unpooled under H1
# --------------------------------------------------------------------------------------------


def _proportion_stds(p1: float, p0: float, ratio: float, variance_factor: float) -> tuple[float, float]:
    """Standard deviations of ``p1_hat - p0_hat`` times ``sqrt(n_treatment)``.

    Under H0 the pooled rate ``(p1 + ratio * p0) / (1 + ratio)`` is used for both arms; under H1
    each arm has its own rate (statsmodels' ``_std_2prop_power``). ``ratio = n_holdout /
    n_treatment``. CUPED multiplies both variances by ``variance_factor = 1 - R²``.
    """
    pooled = (p1 + ratio * p0) / (1.0 + ratio)
    std_null = math.sqrt(pooled * (1.0 - pooled) * (1.0 + 1.0 / ratio) * variance_factor)
    std_alt = math.sqrt((p1 * (1.0 - p1) + p0 * (1.0 - p0) / ratio) * variance_factor)
    return std_null, std_alt


def _proportion_power(
    effect: float, sqrt_n1: float, std_null: float, std_alt: float, crit: float, two_sided: bool
) -> float:
    """``Φ((e·√n1 − z·σ0)/σ1)`` plus, if two-sided, the far tail ``Φ((−e·√n1 − z·σ0)/σ1)``.

    ``effect`` is the difference in the tested direction (positive when the alternative holds).
    """
    shift = effect * sqrt_n1
    power = _norm_cdf((shift - crit * std_null) / std_alt)
    if two_sided:
        power += _norm_cdf((-shift - crit * std_null) / std_alt)
    return min(power, 1.0)


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
    p1 = _check_proportion_inputs(baseline, mde_absolute, alternative)
    _check_alpha(alpha)
    _check_r_squared(r_squared)
    _check_arms(n_treatment, n_holdout, MIN_UNITS_PER_ARM_PROPORTION)
    ratio = n_holdout / n_treatment
    std_null, std_alt = _proportion_stds(p1, baseline, ratio, 1.0 - r_squared)
    two_sided = alternative == "two-sided"
    crit = _norm_isf(0.5 * alpha if two_sided else alpha)
    return _proportion_power(mde_absolute, math.sqrt(n_treatment), std_null, std_alt, crit, two_sided)


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
    power 0.8, equal arms → 2554 per group): ``sample_size_two_proportions(0.06, 0.02, 0.8, 0.05)``
    → ``(2553.63…, 2553.63…)``, rounded up to 2554 per arm.

    The answer is at least one unit per arm; when that minimum already reaches the power
    (huge effects) the minimum is returned.
    """
    p1 = _check_proportion_inputs(baseline, mde_absolute, alternative)
    _check_alpha(alpha)
    _check_power(power, alpha)
    _check_r_squared(r_squared)
    _check_holdout_fraction(holdout_fraction)
    ratio = holdout_fraction / (1.0 - holdout_fraction)
    std_null, std_alt = _proportion_stds(p1, baseline, ratio, 1.0 - r_squared)
    crit = _norm_isf(0.5 * alpha if alternative == "two-sided" else alpha)
    sqrt_n = max((crit * std_null + _norm_isf(1.0 - power) * std_alt) / mde_absolute, 0.0)
    n_min = MIN_UNITS_PER_ARM_PROPORTION * max(1.0, 1.0 / ratio)
    n_treatment = max(sqrt_n * sqrt_n, n_min)
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
    _check_alternative(alternative)
    _check_alpha(alpha)
    _check_power(power, alpha)
    _check_r_squared(r_squared)
    _check_arms(n_treatment, n_holdout, MIN_UNITS_PER_ARM_PROPORTION)
    ratio = n_holdout / n_treatment
    variance_factor = 1.0 - r_squared
    two_sided = alternative == "two-sided"
    crit = _norm_isf(0.5 * alpha if two_sided else alpha)
    sqrt_n1 = math.sqrt(n_treatment)
    sign = -1.0 if alternative == "smaller" else 1.0
    e_max = baseline if alternative == "smaller" else 1.0 - baseline

    def gap(effect: float) -> float:
        std_null, std_alt = _proportion_stds(baseline + sign * effect, baseline, ratio, variance_factor)
        return _proportion_power(effect, sqrt_n1, std_null, std_alt, crit, two_sided) - power

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
        (crit + _norm_isf(1.0 - power))
        * math.sqrt(baseline * (1.0 - baseline) * (1.0 + 1.0 / ratio) * variance_factor)
        / sqrt_n1
    )
    if 0.0 < guess < e_max:
        gap_guess = gap(guess)
        if gap_guess < 0.0:
            low, gap_low = guess, gap_guess
        else:
            high, gap_high = guess, gap_guess
    return _brent_root(gap, low, high, gap_low, gap_high)


# --------------------------------------------------------------------------------------------
# Two means: pooled-variance two-sample t-test, noncentral t
# --------------------------------------------------------------------------------------------


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


def _t_rejection_probability(
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


def _t_power(effect_size: float, n1: float, n2: float, alpha_tail: float, two_sided: bool) -> float:
    """Noncentral-t power of the pooled two-sample t-test at arms ``n1``, ``n2``."""
    df = n1 + n2 - 2.0
    nc = effect_size * math.sqrt(n1 * n2 / (n1 + n2))
    crit = -float(special.stdtrit(df, alpha_tail))
    return float(_t_rejection_probability(df, nc, crit, two_sided))


def _effect_size(mde_absolute: float, std_dev: float, r_squared: float) -> float:
    return mde_absolute / (std_dev * math.sqrt(1.0 - r_squared))


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

    Example (Cohen 1988, ch. 2: d = 0.5, 64 per group, α = 0.05 two-sided):
    ``power_two_means(0.5, 1.0, 64, 64, 0.05)`` ≈ 0.80.
    """
    _check_std_dev(std_dev)
    if not mde_absolute > 0.0:
        raise InvalidProblem("mde", "must be positive (its direction is set by 'alternative')")
    _check_alternative(alternative)
    _check_alpha(alpha)
    _check_r_squared(r_squared)
    _check_arms(n_treatment, n_holdout, MIN_UNITS_PER_ARM_MEAN)
    two_sided = alternative == "two-sided"
    return _t_power(
        _effect_size(mde_absolute, std_dev, r_squared),
        n_treatment,
        n_holdout,
        0.5 * alpha if two_sided else alpha,
        two_sided,
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
    _check_std_dev(std_dev)
    if not mde_absolute > 0.0:
        raise InvalidProblem("mde", "must be positive (its direction is set by 'alternative')")
    _check_alternative(alternative)
    _check_alpha(alpha)
    _check_power(power, alpha)
    _check_r_squared(r_squared)
    _check_holdout_fraction(holdout_fraction)
    ratio = holdout_fraction / (1.0 - holdout_fraction)
    d = _effect_size(mde_absolute, std_dev, r_squared)
    two_sided = alternative == "two-sided"
    alpha_tail = 0.5 * alpha if two_sided else alpha
    n_min = MIN_UNITS_PER_ARM_MEAN * max(1.0, 1.0 / ratio)

    def gap(n1: float) -> float:
        return _t_power(d, n1, n1 * ratio, alpha_tail, two_sided) - power

    z_alpha = _norm_isf(alpha_tail)
    z_sum = z_alpha + _norm_isf(1.0 - power)
    x0 = max(z_sum * z_sum / (d * d) * (1.0 + ratio) / ratio, n_min)
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
    root = _brent_root(gap, n_min, high, gap_low, gap_high, rtol=1e-13)
    return root, root * ratio


def _t_noncentrality(df: float, crit: float, power: float, two_sided: bool) -> float:
    """Noncentrality ``δ`` at which :func:`_t_rejection_probability` equals ``power``."""
    return float(_t_noncentrality_array(np.array([df]), np.array([crit]), power, two_sided)[0])


def _t_noncentrality_array(df: FloatArray, crit: FloatArray, power: float, two_sided: bool) -> FloatArray:
    """Noncentralities ``δ`` at which :func:`_t_rejection_probability` equals ``power``.

    ``scipy.special.nctdtrinc`` inverts the near tail (to ~1e-8 in probability); secant steps on
    the exact power (far tail included) polish it to ~1e-12. Entries where that fails are solved
    by Brent's method one at a time.
    """

    def gap(delta: FloatArray) -> FloatArray:
        return _t_rejection_probability(df, delta, crit, two_sided) - power

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
        return float(_t_rejection_probability(df, delta, crit, two_sided)) - power

    high = 1.0
    gap_high = gap(high)
    while gap_high < 0.0:
        high *= 2.0
        if high > 1e8:
            raise InvalidProblem("power", "cannot be reached by any effect at this sample size")
        gap_high = gap(high)
    return _brent_root(gap, 0.0, high, gap(0.0), gap_high, rtol=1e-14)


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
    _check_std_dev(std_dev)
    _check_alternative(alternative)
    _check_alpha(alpha)
    _check_power(power, alpha)
    _check_r_squared(r_squared)
    _check_arms(n_treatment, n_holdout, MIN_UNITS_PER_ARM_MEAN)
    two_sided = alternative == "two-sided"
    df = n_treatment + n_holdout - 2.0
    crit = -float(special.stdtrit(df, 0.5 * alpha if two_sided else alpha))
    nc = _t_noncentrality(df, crit, power, two_sided)
    n_eff = n_treatment * n_holdout / (n_treatment + n_holdout)
    return nc / math.sqrt(n_eff) * std_dev * math.sqrt(1.0 - r_squared)


# --------------------------------------------------------------------------------------------
# The design problem
# --------------------------------------------------------------------------------------------


class _Spec(NamedTuple):
    """A validated problem in the units the solvers use (a NamedTuple: it is built on every solve,
    and a frozen dataclass costs several times more to build than the proportion solve itself)."""

    is_proportion: bool
    baseline: float
    std_dev: float
    alpha: float
    alpha_per_comparison: float
    power: float | None
    mde_absolute: float | None
    sample_size: int | None
    holdout_fraction: float
    alternative: Alternative
    r_squared: float
    daily_units: float | None
    comparisons: int
    correction: Correction


def _validate(problem: HoldoutDesignProblem, *, need: tuple[str, ...]) -> _Spec:
    """Check every input and return a :class:`_Spec`; ``need`` lists the inputs that must be
    present (``"power"``, ``"mde"``, ``"sample_size"``)."""
    is_proportion, baseline, std_dev = _validate_metric(problem.metric)
    alpha = _finite(problem.alpha, "alpha")
    if not 0.0 < alpha <= 0.5:
        raise InvalidProblem("alpha", "must be above 0 and at most 0.5")
    _check_alternative(problem.alternative)
    comparisons = problem.comparisons
    if not (_is_real(comparisons) and math.isfinite(comparisons) and float(comparisons).is_integer()):
        raise InvalidProblem("comparisons", "must be a whole number of at least 1")
    if comparisons < 1:
        raise InvalidProblem("comparisons", "must be a whole number of at least 1")
    if problem.correction not in ("bonferroni", "none"):
        raise InvalidProblem("correction", "must be 'bonferroni' or 'none'")
    alpha_per = alpha / comparisons if problem.correction == "bonferroni" else alpha
    r_squared = _finite(problem.r_squared, "variance_reduction.r_squared")
    _check_r_squared(r_squared)
    h = _finite(problem.holdout_fraction, "holdout_fraction")
    _check_holdout_fraction(h)
    daily_units = None if problem.daily_units is None else _finite(problem.daily_units, "daily_units")
    if daily_units is not None and not daily_units > 0.0:
        raise InvalidProblem("daily_units", "must be positive")

    power: float | None = None
    if "power" in need:
        if problem.power is None:
            raise InvalidProblem("power", "is required unless solving for power")
        power = _finite(problem.power, "power")
        _check_power(power, alpha_per)
    mde_absolute = _mde_absolute(problem, baseline, is_proportion) if "mde" in need else None
    minimum = MIN_UNITS_PER_ARM_PROPORTION if is_proportion else MIN_UNITS_PER_ARM_MEAN
    sample_size = _validate_sample_size(problem.sample_size, h, minimum) if "sample_size" in need else None
    return _Spec(
        is_proportion=is_proportion,
        baseline=baseline,
        std_dev=std_dev,
        alpha=alpha,
        alpha_per_comparison=alpha_per,
        power=power,
        mde_absolute=mde_absolute,
        sample_size=sample_size,
        holdout_fraction=h,
        alternative=problem.alternative,
        r_squared=r_squared,
        daily_units=daily_units,
        comparisons=int(comparisons),
        correction=problem.correction,
    )


def _validate_metric(metric: object) -> tuple[bool, float, float]:
    """``(is_proportion, baseline, std_dev)``; ``std_dev`` is 0 for proportions."""
    if isinstance(metric, ProportionMetric):
        baseline = _finite(metric.baseline, "metric.baseline")
        if not 0.0 < baseline < 1.0:
            raise InvalidProblem("metric.baseline", "a conversion rate must be strictly between 0 and 1")
        return True, baseline, 0.0
    if isinstance(metric, MeanMetric):
        baseline = _finite(metric.baseline, "metric.baseline")
        if baseline == 0.0:
            raise InvalidProblem("metric.baseline", "must be non-zero: the relative MDE is a fraction of it")
        std_dev = _finite(metric.std_dev, "metric.std_dev")
        _check_std_dev(std_dev)
        return False, baseline, std_dev
    raise InvalidProblem("metric", "must be a proportion or a mean metric")


def _validate_sample_size(raw: float | None, h: float, minimum: float) -> int:
    if raw is None:
        raise InvalidProblem("sample_size", "is required unless solving for the sample size")
    if not (_is_real(raw) and math.isfinite(raw) and float(raw).is_integer()):
        raise InvalidProblem("sample_size", "must be a whole number of units")
    sample_size = int(raw)
    if sample_size > MAX_TOTAL_UNITS:
        raise InvalidProblem("sample_size", f"must be at most {MAX_TOTAL_UNITS:g}")
    if not (sample_size * h >= minimum and sample_size * (1.0 - h) >= minimum):
        raise InvalidProblem(
            "sample_size",
            f"too small: each arm needs at least {minimum:g} units "
            f"(holdout {sample_size * h:g}, treatment {sample_size * (1.0 - h):g})",
        )
    return sample_size


def _mde_absolute(problem: HoldoutDesignProblem, baseline: float, is_proportion: bool) -> float:
    relative, absolute = problem.mde_relative, problem.mde_absolute
    if relative is not None and absolute is not None:
        raise InvalidProblem("mde", "give either the relative or the absolute MDE, not both")
    if relative is None and absolute is None:
        raise InvalidProblem("mde", "is required unless solving for the MDE")
    value = _finite(absolute, "mde") if absolute is not None else _finite(relative, "mde") * abs(baseline)
    if not value > 0.0:
        raise InvalidProblem("mde", "must be positive (its direction is set by 'alternative')")
    if is_proportion:
        _treatment_rate(baseline, value, problem.alternative)
    return value


def _split(total: int, h: float) -> ArmSizes:
    holdout = math.floor(total * h + 0.5)
    holdout = min(max(holdout, 1), total - 1)
    return ArmSizes(total=total, treatment=total - holdout, holdout=holdout)


def _power_at(spec: _Spec, mde: float, n_treatment: float, n_holdout: float) -> float:
    if spec.is_proportion:
        return power_two_proportions(
            spec.baseline,
            mde,
            n_treatment,
            n_holdout,
            spec.alpha_per_comparison,
            spec.alternative,
            spec.r_squared,
        )
    return power_two_means(
        mde,
        spec.std_dev,
        n_treatment,
        n_holdout,
        spec.alpha_per_comparison,
        spec.alternative,
        spec.r_squared,
    )


_NEEDS: Final[dict[str, tuple[str, ...]]] = {
    "sample_size": ("power", "mde"),
    "mde": ("sample_size", "power"),
    "power": ("sample_size", "mde"),
}


class _Solved(NamedTuple):
    arms: ArmSizes
    unrounded: tuple[float, float]
    mde_absolute: float
    power: float
    at_minimum: bool


def solve_holdout_design(problem: HoldoutDesignProblem) -> HoldoutDesign:
    """Solve a holdout-test design for its sample size, MDE or power.

    ``alpha_per_comparison`` is ``alpha / comparisons`` under Bonferroni, else ``alpha``; every
    test is run at that level. See the module docstring for the methods and conventions and the
    lower-level functions for the formulas. When solving for the sample size each arm is rounded
    up separately (``treatment = ceil(n_t)``, ``holdout = ceil(n_h)``, ``total`` their sum), and
    the reported power is the power achieved at that total, never below the target.

    Example (Cohen 1988, Table 2.4.1: d = 0.5, α = 0.05 two-sided, power 0.8 → 64 per group)::

        >>> design = solve_holdout_design(HoldoutDesignProblem(
        ...     metric=MeanMetric(baseline=100.0, std_dev=10.0), solve_for="sample_size", mde_absolute=5.0))
        >>> design.sample_size
        ArmSizes(total=128, treatment=64, holdout=64)
    """
    need = _NEEDS.get(problem.solve_for)
    if need is None:
        raise InvalidProblem("solve_for", "must be 'sample_size', 'mde' or 'power'")
    spec = _validate(problem, need=need)
    solved = (
        _solve_sample_size(spec) if problem.solve_for == "sample_size" else _solve_at_total(spec, problem.solve_for)
    )
    mde = solved.mde_absolute
    expected: tuple[float, float] | None = None
    if spec.is_proportion:
        p1 = _treatment_rate(spec.baseline, mde, spec.alternative)
        expected = (p1 * solved.arms.treatment, spec.baseline * solved.arms.holdout)
    duration = None if spec.daily_units is None else max(1, math.ceil(solved.arms.total / spec.daily_units))
    design = HoldoutDesign(
        sample_size=solved.arms,
        sample_size_unrounded=solved.unrounded,
        mde_absolute=mde,
        mde_relative=mde / abs(spec.baseline),
        power=solved.power,
        alpha_per_comparison=spec.alpha_per_comparison,
        duration_days=duration,
        expected_conversions=expected,
        method=_method(spec),
        warnings=_warnings(spec, problem.solve_for, solved, expected, duration),
    )
    _assert_finite(design)
    return design


def _solve_sample_size(spec: _Spec) -> _Solved:
    assert spec.power is not None and spec.mde_absolute is not None
    mde, target = spec.mde_absolute, spec.power
    n_t, n_h = _sample_size(spec, mde, target)
    if not n_t + n_h <= MAX_TOTAL_UNITS:
        raise InvalidProblem("mde", f"needs more than {MAX_TOTAL_UNITS:g} units: too small to detect")
    treatment, holdout = math.ceil(n_t), math.ceil(n_h)
    arms = ArmSizes(total=treatment + holdout, treatment=treatment, holdout=holdout)
    h = spec.holdout_fraction
    achieved = _power_at(spec, mde, arms.total * (1.0 - h), arms.total * h)
    at_minimum = achieved > target + 1e-9 and _is_minimum(spec, n_t, n_h)
    return _Solved(arms, (n_t, n_h), mde, achieved, at_minimum)


def _solve_at_total(spec: _Spec, solve_for: str) -> _Solved:
    assert spec.sample_size is not None
    h = spec.holdout_fraction
    n_t, n_h = spec.sample_size * (1.0 - h), spec.sample_size * h
    if solve_for == "mde":
        assert spec.power is not None
        mde, power = _mde_at(spec, n_t, n_h, spec.power), spec.power
    else:
        assert spec.mde_absolute is not None
        mde = spec.mde_absolute
        power = _power_at(spec, mde, n_t, n_h)
    return _Solved(_split(spec.sample_size, h), (n_t, n_h), mde, power, False)


def _method(spec: _Spec) -> str:
    method = METHOD_PROPORTION if spec.is_proportion else METHOD_MEAN
    if spec.r_squared > 0.0:
        method += f"; CUPED variance x (1 - R²) with R² = {spec.r_squared:g}"
    if spec.comparisons > 1 and spec.correction == "bonferroni":
        method += f"; Bonferroni alpha / {spec.comparisons}"
    return method


def _sample_size(spec: _Spec, mde: float, power: float) -> tuple[float, float]:
    if spec.is_proportion:
        return sample_size_two_proportions(
            spec.baseline,
            mde,
            power,
            spec.alpha_per_comparison,
            spec.holdout_fraction,
            spec.alternative,
            spec.r_squared,
        )
    return sample_size_two_means(
        mde,
        spec.std_dev,
        power,
        spec.alpha_per_comparison,
        spec.holdout_fraction,
        spec.alternative,
        spec.r_squared,
    )


def _is_minimum(spec: _Spec, n_t: float, n_h: float) -> bool:
    minimum = MIN_UNITS_PER_ARM_PROPORTION if spec.is_proportion else MIN_UNITS_PER_ARM_MEAN
    return min(n_t, n_h) <= minimum * (1.0 + 1e-12)


def _mde_at(spec: _Spec, n_t: float, n_h: float, power: float) -> float:
    if spec.is_proportion:
        return mde_two_proportions(
            spec.baseline,
            n_t,
            n_h,
            power,
            spec.alpha_per_comparison,
            spec.alternative,
            spec.r_squared,
        )
    return mde_two_means(
        spec.std_dev,
        n_t,
        n_h,
        power,
        spec.alpha_per_comparison,
        spec.alternative,
        spec.r_squared,
    )


def _warnings(
    spec: _Spec, solve_for: str, solved: _Solved, expected: tuple[float, float] | None, duration: int | None
) -> tuple[str, ...]:
    """Plain-language caveats for an answer that is valid but doubtful."""
    arms, power = solved.arms, solved.power
    out: list[str] = []
    if expected is not None:
        for arm, events, size in (
            ("treatment", expected[0], arms.treatment),
            ("holdout", expected[1], arms.holdout),
        ):
            fewest = min(events, size - events)
            if fewest < MIN_EXPECTED_EVENTS:
                what = "conversions" if events <= size - events else "non-conversions"
                out.append(
                    f"The {arm} arm expects only {fewest:.0f} {what} (fewer than "
                    f"{MIN_EXPECTED_EVENTS:.0f}); the normal approximation behind the z-test is "
                    "poor there, so treat power and MDE as rough."
                )
    elif min(arms.treatment, arms.holdout) < SMALL_MEAN_ARM:
        out.append(
            f"An arm has fewer than {SMALL_MEAN_ARM:.0f} units; the t-test assumes roughly normal "
            "arm means, which skewed metrics such as revenue may not have at this size."
        )
    if duration is not None and duration > MAX_SENSIBLE_DAYS:
        out.append(
            f"The test would run {duration} days, more than a year; behaviour and audiences drift "
            "over that time. Consider a larger holdout, a larger MDE or CUPED."
        )
    if solve_for != "power" and spec.power is not None and spec.power >= HIGH_POWER:
        out.append(
            f"A power target of {spec.power:g} is very high; the sample size (or MDE) it needs grows "
            "quickly near 1, so small errors in the baseline inputs matter a lot."
        )
    if solve_for == "power" and power < 0.5:
        out.append(
            f"Power is only {power:.2f}: the test is more likely to miss an effect of this size than to detect it."
        )
    if solved.at_minimum:
        out.append(
            "The effect is so large that the smallest allowed arms already exceed the requested "
            "power; the sample size is that minimum."
        )
    if spec.comparisons > 1 and spec.correction == "none":
        family = 1.0 - (1.0 - spec.alpha) ** spec.comparisons
        out.append(
            f"{spec.comparisons} comparisons without correction: the chance of at least one false "
            f"positive is up to {family:.3f}, not {spec.alpha:g}."
        )
    return tuple(out)


def _assert_finite(design: HoldoutDesign) -> None:
    values = [
        *design.sample_size_unrounded,
        design.mde_absolute,
        design.mde_relative,
        design.power,
        design.alpha_per_comparison,
        *(design.expected_conversions or ()),
    ]
    if not all(math.isfinite(v) for v in values):  # pragma: no cover - defensive
        raise InvalidProblem("mde", "the inputs lead to a non-finite answer")


# --------------------------------------------------------------------------------------------
# Vectorised curves
# --------------------------------------------------------------------------------------------


def _curve_arms(spec: _Spec, sample_sizes: ArrayLike) -> tuple[FloatArray, FloatArray]:
    sizes = np.asarray(sample_sizes, dtype=np.float64)
    if sizes.ndim != 1 or sizes.size == 0:
        raise InvalidProblem("sample_sizes", "must be a non-empty list of totals")
    if not np.all(np.isfinite(sizes)) or np.any(sizes > MAX_TOTAL_UNITS):
        raise InvalidProblem("sample_sizes", f"must be finite and at most {MAX_TOTAL_UNITS:g}")
    h = spec.holdout_fraction
    n_t, n_h = sizes * (1.0 - h), sizes * h
    minimum = MIN_UNITS_PER_ARM_PROPORTION if spec.is_proportion else MIN_UNITS_PER_ARM_MEAN
    if np.any(n_t < minimum) or np.any(n_h < minimum):
        raise InvalidProblem("sample_sizes", f"every total must give each arm at least {minimum:g} units")
    return n_t, n_h


def _proportion_power_array(spec: _Spec, effect: FloatArray, n_t: FloatArray, n_h: FloatArray) -> FloatArray:
    p0 = spec.baseline
    p1 = p0 + (-effect if spec.alternative == "smaller" else effect)
    vf = 1.0 - spec.r_squared
    pooled = (n_t * p1 + n_h * p0) / (n_t + n_h)
    se_null = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n_t + 1.0 / n_h) * vf)
    se_alt = np.sqrt((p1 * (1.0 - p1) / n_t + p0 * (1.0 - p0) / n_h) * vf)
    two_sided = spec.alternative == "two-sided"
    crit = _norm_isf(_tail_alpha(spec.alpha_per_comparison, spec.alternative))
    power: FloatArray = special.ndtr((effect - crit * se_null) / se_alt)
    if two_sided:
        power = power + special.ndtr((-effect - crit * se_null) / se_alt)
    return np.minimum(power, 1.0)


def _mean_power_array(spec: _Spec, effect_size: float, n_t: FloatArray, n_h: FloatArray) -> FloatArray:
    df = n_t + n_h - 2.0
    nc = effect_size * np.sqrt(n_t * n_h / (n_t + n_h))
    crit = -np.asarray(special.stdtrit(df, _tail_alpha(spec.alpha_per_comparison, spec.alternative)), dtype=np.float64)
    return _t_rejection_probability(df, nc, crit, spec.alternative == "two-sided")


def power_curve(problem: HoldoutDesignProblem, sample_sizes: ArrayLike) -> FloatArray:
    """Power at each total sample size (vectorised), with the problem's MDE, alpha, split,
    alternative, correction and CUPED; ``problem.solve_for`` and ``problem.sample_size`` are
    ignored. Equals ``solve_holdout_design(..., solve_for="power").power`` at each total."""
    spec = _validate(problem, need=("mde",))
    assert spec.mde_absolute is not None
    n_t, n_h = _curve_arms(spec, sample_sizes)
    if spec.is_proportion:
        return _proportion_power_array(spec, np.full_like(n_t, spec.mde_absolute), n_t, n_h)
    d = _effect_size(spec.mde_absolute, spec.std_dev, spec.r_squared)
    return _mean_power_array(spec, d, n_t, n_h)


def mde_curve(problem: HoldoutDesignProblem, sample_sizes: ArrayLike) -> FloatArray:
    """Absolute MDE at each total sample size (vectorised), with the problem's power, alpha,
    split, alternative, correction and CUPED. Equals
    ``solve_holdout_design(..., solve_for="mde").mde_absolute`` at each total.

    Proportions: vectorised bisection on the effect (power rises with the effect), to ~1e-15 of
    the largest feasible effect. Means: the noncentrality solve of :func:`mde_two_means` on the
    whole array. Raises ``InvalidProblem
    ("sample_sizes")`` when some total cannot reach the power with any feasible effect.
    """
    spec = _validate(problem, need=("power",))
    assert spec.power is not None
    n_t, n_h = _curve_arms(spec, sample_sizes)
    target = spec.power
    if spec.is_proportion:
        e_max = spec.baseline if spec.alternative == "smaller" else 1.0 - spec.baseline
        high = np.full_like(n_t, e_max)
        if np.any(_proportion_power_array(spec, high, n_t, n_h) <= target):
            raise InvalidProblem(
                "sample_sizes",
                f"some totals are too small to reach power {target:g} with any feasible effect",
            )
        low = np.zeros_like(n_t)
        for _ in range(64):
            mid = 0.5 * (low + high)
            below = _proportion_power_array(spec, mid, n_t, n_h) < target
            low = np.where(below, mid, low)
            high = np.where(below, high, mid)
        result: FloatArray = 0.5 * (low + high)
        return result
    df = n_t + n_h - 2.0
    crit = -np.asarray(special.stdtrit(df, _tail_alpha(spec.alpha_per_comparison, spec.alternative)), dtype=np.float64)
    nc = _t_noncentrality_array(df, crit, target, spec.alternative == "two-sided")
    scale = spec.std_dev * math.sqrt(1.0 - spec.r_squared)
    mde: FloatArray = nc / np.sqrt(n_t * n_h / (n_t + n_h)) * scale
    return mde
