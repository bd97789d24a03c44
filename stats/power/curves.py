"""Power and MDE at many total sample sizes at once, for the charts of a holdout design."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from stats.errors import InvalidProblem
from stats.power.design_problem import DesignSpec, HoldoutDesignProblem, validate_problem
from stats.power.inputs import MAX_TOTAL_UNITS, MIN_UNITS_PER_ARM_MEAN, MIN_UNITS_PER_ARM_PROPORTION, FloatArray
from stats.power.means import effect_size, t_mde_array, t_power_array
from stats.power.proportions import proportion_power_array


def _curve_arms(spec: DesignSpec, sample_sizes: ArrayLike) -> tuple[FloatArray, FloatArray]:
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


def power_curve(problem: HoldoutDesignProblem, sample_sizes: ArrayLike) -> FloatArray:
    """Power at each total sample size (vectorised), with the problem's MDE, alpha, split,
    alternative, correction and CUPED; ``problem.solve_for`` and ``problem.sample_size`` are
    ignored. Equals ``solve_holdout_design(..., solve_for="power").power`` at each total."""
    spec = validate_problem(problem, need=("mde",))
    assert spec.mde_absolute is not None
    n_t, n_h = _curve_arms(spec, sample_sizes)
    if spec.is_proportion:
        return proportion_power_array(
            spec.baseline, spec.mde_absolute, n_t, n_h, spec.alpha_per_comparison, spec.alternative, spec.r_squared
        )
    d = effect_size(spec.mde_absolute, spec.std_dev, spec.r_squared)
    return t_power_array(d, n_t, n_h, spec.alpha_per_comparison, spec.alternative)


def mde_curve(problem: HoldoutDesignProblem, sample_sizes: ArrayLike) -> FloatArray:
    """Absolute MDE at each total sample size (vectorised), with the problem's power, alpha,
    split, alternative, correction and CUPED. Equals
    ``solve_holdout_design(..., solve_for="mde").mde_absolute`` at each total.

    Proportions: vectorised bisection on the effect (power rises with the effect), to ~1e-15 of
    the largest feasible effect. Means: the noncentrality solve of :func:`mde_two_means` on the
    whole array. Raises ``InvalidProblem
    ("sample_sizes")`` when some total cannot reach the power with any feasible effect.
    """
    spec = validate_problem(problem, need=("power",))
    assert spec.power is not None
    n_t, n_h = _curve_arms(spec, sample_sizes)
    target = spec.power
    if spec.is_proportion:
        e_max = spec.baseline if spec.alternative == "smaller" else 1.0 - spec.baseline
        high = np.full_like(n_t, e_max)
        if np.any(_proportion_power(spec, high, n_t, n_h) <= target):
            raise InvalidProblem(
                "sample_sizes",
                f"some totals are too small to reach power {target:g} with any feasible effect",
            )
        low = np.zeros_like(n_t)
        for _ in range(64):
            mid = 0.5 * (low + high)
            below = _proportion_power(spec, mid, n_t, n_h) < target
            low = np.where(below, mid, low)
            high = np.where(below, high, mid)
        result: FloatArray = 0.5 * (low + high)
        return result
    return t_mde_array(spec.std_dev, n_t, n_h, target, spec.alpha_per_comparison, spec.alternative, spec.r_squared)


def _proportion_power(spec: DesignSpec, effect: FloatArray, n_t: FloatArray, n_h: FloatArray) -> FloatArray:
    return proportion_power_array(
        spec.baseline, effect, n_t, n_h, spec.alpha_per_comparison, spec.alternative, spec.r_squared
    )
