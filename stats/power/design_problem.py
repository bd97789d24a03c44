"""A holdout design problem, its answer, and the validation that turns the one into solver units."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from stats.errors import InvalidProblem
from stats.power.inputs import (
    MAX_TOTAL_UNITS,
    MIN_UNITS_PER_ARM_MEAN,
    MIN_UNITS_PER_ARM_PROPORTION,
    Alternative,
    Correction,
    SolveFor,
    check_alternative,
    check_holdout_fraction,
    check_mde,
    check_power,
    check_r_squared,
    check_std_dev,
    finite,
    is_real,
    treatment_rate,
)


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


class DesignSpec(NamedTuple):
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


def validate_problem(problem: HoldoutDesignProblem, *, need: tuple[str, ...]) -> DesignSpec:
    """Check every input and return a :class:`DesignSpec`; ``need`` lists the inputs that must be
    present (``"power"``, ``"mde"``, ``"sample_size"``)."""
    is_proportion, baseline, std_dev = _validate_metric(problem.metric)
    alpha = finite(problem.alpha, "alpha")
    if not 0.0 < alpha <= 0.5:
        raise InvalidProblem("alpha", "must be above 0 and at most 0.5")
    check_alternative(problem.alternative)
    comparisons = problem.comparisons
    if not (is_real(comparisons) and math.isfinite(comparisons) and float(comparisons).is_integer()):
        raise InvalidProblem("comparisons", "must be a whole number of at least 1")
    if comparisons < 1:
        raise InvalidProblem("comparisons", "must be a whole number of at least 1")
    if problem.correction not in ("bonferroni", "none"):
        raise InvalidProblem("correction", "must be 'bonferroni' or 'none'")
    alpha_per = alpha / comparisons if problem.correction == "bonferroni" else alpha
    r_squared = finite(problem.r_squared, "variance_reduction.r_squared")
    check_r_squared(r_squared)
    h = finite(problem.holdout_fraction, "holdout_fraction")
    check_holdout_fraction(h)
    daily_units = None if problem.daily_units is None else finite(problem.daily_units, "daily_units")
    if daily_units is not None and not daily_units > 0.0:
        raise InvalidProblem("daily_units", "must be positive")

    power: float | None = None
    if "power" in need:
        if problem.power is None:
            raise InvalidProblem("power", "is required unless solving for power")
        power = finite(problem.power, "power")
        check_power(power, alpha_per)
    mde_absolute = _mde_absolute(problem, baseline, is_proportion) if "mde" in need else None
    minimum = MIN_UNITS_PER_ARM_PROPORTION if is_proportion else MIN_UNITS_PER_ARM_MEAN
    sample_size = _validate_sample_size(problem.sample_size, h, minimum) if "sample_size" in need else None
    return DesignSpec(
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
        baseline = finite(metric.baseline, "metric.baseline")
        if not 0.0 < baseline < 1.0:
            raise InvalidProblem("metric.baseline", "a conversion rate must be strictly between 0 and 1")
        return True, baseline, 0.0
    if isinstance(metric, MeanMetric):
        baseline = finite(metric.baseline, "metric.baseline")
        if baseline == 0.0:
            raise InvalidProblem("metric.baseline", "must be non-zero: the relative MDE is a fraction of it")
        std_dev = finite(metric.std_dev, "metric.std_dev")
        check_std_dev(std_dev)
        return False, baseline, std_dev
    raise InvalidProblem("metric", "must be a proportion or a mean metric")


def _validate_sample_size(raw: float | None, h: float, minimum: float) -> int:
    if raw is None:
        raise InvalidProblem("sample_size", "is required unless solving for the sample size")
    if not (is_real(raw) and math.isfinite(raw) and float(raw).is_integer()):
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
    value = finite(absolute, "mde") if absolute is not None else finite(relative, "mde") * abs(baseline)
    check_mde(value)
    if is_proportion:
        treatment_rate(baseline, value, problem.alternative)
    return value
