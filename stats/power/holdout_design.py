"""Solve a holdout design for its sample size, MDE or power, with plain-language warnings."""

from __future__ import annotations

import math
from typing import Final, NamedTuple

from stats.errors import InvalidProblem
from stats.power.design_problem import (
    ArmSizes,
    DesignSpec,
    HoldoutDesign,
    HoldoutDesignProblem,
    validate_problem,
)
from stats.power.inputs import MAX_TOTAL_UNITS, MIN_UNITS_PER_ARM_MEAN, MIN_UNITS_PER_ARM_PROPORTION, treatment_rate
from stats.power.means import mde_two_means, power_two_means, sample_size_two_means
from stats.power.proportions import mde_two_proportions, power_two_proportions, sample_size_two_proportions

#: Below this many expected conversions (or non-conversions) in an arm, the warning fires.
MIN_EXPECTED_EVENTS: Final = 200.0
#: Warn above this duration.
MAX_SENSIBLE_DAYS: Final = 365
#: Refuse above this duration: the largest whole number a JSON client reads exactly (2**53).
MAX_DURATION_DAYS: Final = 2**53
#: Warn for power targets at or above this.
HIGH_POWER: Final = 0.99
#: Warn for fewer units per arm than this in a t-test.
SMALL_MEAN_ARM: Final = 30.0

METHOD_PROPORTION: Final = (
    "two-sample z-test for proportions (pooled variance under H0, unpooled under H1), normal approximation"
)
METHOD_MEAN: Final = "two-sample t-test (pooled variance), noncentral t distribution"


def _split(total: int, h: float) -> ArmSizes:
    holdout = math.floor(total * h + 0.5)
    holdout = min(max(holdout, 1), total - 1)
    return ArmSizes(total=total, treatment=total - holdout, holdout=holdout)


def _power_at(spec: DesignSpec, mde: float, n_treatment: float, n_holdout: float) -> float:
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

        >>> from stats.power import HoldoutDesignProblem, MeanMetric, solve_holdout_design
        >>> design = solve_holdout_design(HoldoutDesignProblem(
        ...     metric=MeanMetric(baseline=100.0, std_dev=10.0), solve_for="sample_size", mde_absolute=5.0))
        >>> design.sample_size
        ArmSizes(total=128, treatment=64, holdout=64)
    """
    need = _NEEDS.get(problem.solve_for)
    if need is None:
        raise InvalidProblem("solve_for", "must be 'sample_size', 'mde' or 'power'")
    spec = validate_problem(problem, need=need)
    solved = (
        _solve_sample_size(spec) if problem.solve_for == "sample_size" else _solve_at_total(spec, problem.solve_for)
    )
    mde = solved.mde_absolute
    expected: tuple[float, float] | None = None
    if spec.is_proportion:
        p1 = treatment_rate(spec.baseline, mde, spec.alternative)
        expected = (p1 * solved.arms.treatment, spec.baseline * solved.arms.holdout)
    mde_relative = mde / abs(spec.baseline)
    if not math.isfinite(mde_relative):
        raise InvalidProblem(
            "metric.baseline", "is so close to 0 next to the MDE that the relative MDE exceeds the range of a double"
        )
    duration = None if spec.daily_units is None else _duration_days(solved.arms.total, spec.daily_units)
    design = HoldoutDesign(
        sample_size=solved.arms,
        sample_size_unrounded=solved.unrounded,
        mde_absolute=mde,
        mde_relative=mde_relative,
        power=solved.power,
        alpha_per_comparison=spec.alpha_per_comparison,
        duration_days=duration,
        expected_conversions=expected,
        method=_method(spec),
        warnings=_warnings(spec, problem.solve_for, solved, expected, duration),
    )
    _assert_finite(design)
    return design


def _solve_sample_size(spec: DesignSpec) -> _Solved:
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


def _solve_at_total(spec: DesignSpec, solve_for: str) -> _Solved:
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


def _method(spec: DesignSpec) -> str:
    method = METHOD_PROPORTION if spec.is_proportion else METHOD_MEAN
    if spec.r_squared > 0.0:
        method += f"; CUPED variance x (1 - R²) with R² = {spec.r_squared:g}"
    if spec.comparisons > 1 and spec.correction == "bonferroni":
        method += f"; Bonferroni alpha / {spec.comparisons}"
    return method


def _sample_size(spec: DesignSpec, mde: float, power: float) -> tuple[float, float]:
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


def _is_minimum(spec: DesignSpec, n_t: float, n_h: float) -> bool:
    minimum = MIN_UNITS_PER_ARM_PROPORTION if spec.is_proportion else MIN_UNITS_PER_ARM_MEAN
    return min(n_t, n_h) <= minimum * (1.0 + 1e-12)


def _mde_at(spec: DesignSpec, n_t: float, n_h: float, power: float) -> float:
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


def _duration_days(total: int, daily_units: float) -> int:
    """Whole days for ``total`` units to enter at ``daily_units`` a day (at least 1); refused past
    :data:`MAX_DURATION_DAYS`, which a rate near 0 (5e-324 a day) would pass, to infinity."""
    days = total / daily_units
    if not days <= MAX_DURATION_DAYS:
        raise InvalidProblem("daily_units", f"is so low that the test would run more than {MAX_DURATION_DAYS:,} days")
    return max(1, math.ceil(days))


def _warnings(
    spec: DesignSpec, solve_for: str, solved: _Solved, expected: tuple[float, float] | None, duration: int | None
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
