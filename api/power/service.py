"""Translate power requests to the numerical core (``stats.power``) and its answers back."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Literal

import msgspec
import numpy as np

from api.charts.power_curve import sample_size_curve_chart
from api.fields.percents import RARE_LIFT, percent_warning
from api.http.errors import invalid_field
from api.power.schemas import (
    CurvePoint,
    HoldoutPowerCurveRequest,
    HoldoutPowerCurveResponse,
    HoldoutPowerRequest,
    HoldoutPowerResponse,
    MdeResult,
    MeanMetric,
    PerArmFigures,
    ProportionMetric,
    SampleSize,
)
from stats import power as power_stats
from stats.power.inputs import norm_isf


def _problem(request: HoldoutPowerRequest, solve_for: str) -> power_stats.HoldoutDesignProblem:
    metric: power_stats.ProportionMetric | power_stats.MeanMetric
    if isinstance(request.metric, ProportionMetric):
        metric = power_stats.ProportionMetric(baseline=request.metric.baseline)
    else:
        metric = power_stats.MeanMetric(baseline=request.metric.baseline, std_dev=request.metric.std_dev)
    mde = request.mde
    if mde is not None and (mde.relative is None) == (mde.absolute is None):
        raise invalid_field("mde", "give exactly one of `relative` and `absolute`")
    return power_stats.HoldoutDesignProblem(
        metric=metric,
        solve_for=solve_for,  # type: ignore[arg-type]
        alpha=request.alpha,
        power=request.power,
        mde_relative=mde.relative if mde else None,
        mde_absolute=mde.absolute if mde else None,
        sample_size=request.sample_size,
        holdout_fraction=request.holdout_fraction,
        alternative=request.alternative,
        comparisons=request.comparisons,
        correction=request.correction,
        r_squared=request.variance_reduction.r_squared if request.variance_reduction else 0.0,
        daily_units=request.daily_units,
    )


# No test has more units; beyond about 2^53 a float64 no longer counts units exactly either.
MAX_TOTAL_UNITS = 1e15


def refuse_undetectable_mde(request: HoldoutPowerRequest) -> None:
    """400 naming the MDE when it is so small a share of the noise that no real sample could detect it.

    The normal approximation of the total sample, ``n = (z_α + z_β)² / (d² f (1 − f))`` with ``d`` the
    lift in standard deviations (after CUPED) and ``f`` the holdout fraction, is compared with
    :data:`MAX_TOTAL_UNITS` as ``d < (z_α + z_β) / sqrt(MAX f (1 − f))``, so that nothing overflows or
    underflows on the way (``d²`` is 0 for a lift of 1e-300 standard deviations).
    """
    mde = request.mde
    if request.solve_for != "sample_size" or mde is None:
        return
    metric = request.metric
    if isinstance(metric, ProportionMetric):
        noise, scale = math.sqrt(metric.baseline * (1.0 - metric.baseline)), metric.baseline
    else:
        noise, scale = metric.std_dev, abs(metric.baseline)
    if mde.relative is not None:
        field, lift = "mde.relative", mde.relative * scale
    else:
        field, lift = "mde.absolute", mde.absolute or 0.0
    r_squared = request.variance_reduction.r_squared if request.variance_reduction else 0.0
    effect = lift / (noise * math.sqrt(1.0 - r_squared))
    alpha = request.alpha / (request.comparisons if request.correction == "bonferroni" else 1)
    tails = 2 if request.alternative == "two-sided" else 1
    z = norm_isf(alpha / tails) - norm_isf(request.power or 0.8)  # scipy.stats' norm.isf took a fifth of a call
    fraction = request.holdout_fraction
    if z > 0 and effect < z / math.sqrt(MAX_TOTAL_UNITS * fraction * (1.0 - fraction)):
        raise invalid_field(
            field,
            f"is {effect:.3g} standard deviations of the metric: detecting it would take more than "
            f"{MAX_TOTAL_UNITS:.0e} units",
        )


def _check_mde_as_percent(request: HoldoutPowerRequest) -> list[str]:
    """Warnings for a relative MDE of 100% or more (a percent sent for a fraction?); 400 naming the field when
    the MDE would lift a conversion rate past 1."""
    mde = request.mde
    if mde is None or request.solve_for == "mde":
        return []
    metric = request.metric
    if isinstance(metric, ProportionMetric):
        field, change = ("mde.relative", metric.baseline * (mde.relative or 0.0))
        if mde.relative is None:
            field, change = "mde.absolute", mde.absolute or 0.0
        sign = -1.0 if request.alternative == "smaller" else 1.0
        moved = metric.baseline + sign * change
        if not 0.0 < moved < 1.0:
            percent = percent_warning(field, mde.relative or mde.absolute or 0.0)
            hint = "" if percent is None else f" ({percent.split(': ', 1)[1]})"
            side = "past 1: a proportion cannot exceed 1" if sign > 0 else "to 0 or below: a proportion cannot"
            raise invalid_field(field, f"moves the conversion rate from {metric.baseline:g} to {moved:g}, {side}{hint}")
    if mde.relative is None:
        return _absolute_percent_warning(metric, mde.absolute)
    warning = percent_warning("mde.relative", mde.relative)
    return [] if warning is None else [warning]


def _absolute_percent_warning(metric: ProportionMetric | MeanMetric, absolute: float | None) -> list[str]:
    """A proportion's absolute MDE that lifts its rate by 100% or more: percentage points sent for a fraction?"""
    if not isinstance(metric, ProportionMetric) or absolute is None or abs(absolute) < RARE_LIFT * metric.baseline:
        return []
    return [
        f"mde.absolute: {absolute:g} moves the conversion rate by {absolute * 100:g} percentage points, a lift of "
        f"{absolute / metric.baseline:+.0%} on the baseline {metric.baseline:g}; absolute MDEs are fractions "
        f"(0.005 = half a percentage point): if you meant {absolute:g} percentage points, send {absolute / 100:g}"
    ]


def _require_finite(design: power_stats.HoldoutDesign, solve_for: str) -> None:
    """A design whose figures are not all finite is refused (400), never answered with NaN or infinity."""
    figures = [design.mde_absolute, design.mde_relative, design.power, *design.sample_size_unrounded]
    if not all(math.isfinite(value) for value in figures):
        raise invalid_field("metric", f"these values give no finite {solve_for}; check their magnitudes")


def solve_holdout_power(request: HoldoutPowerRequest) -> HoldoutPowerResponse:
    """Solve the design for ``request.solve_for``."""
    percent = _check_mde_as_percent(request)
    refuse_undetectable_mde(request)
    design = power_stats.solve_holdout_design(_problem(request, request.solve_for))
    _require_finite(design, request.solve_for)
    expected = design.expected_conversions
    return HoldoutPowerResponse(
        solve_for=request.solve_for,
        sample_size=SampleSize(
            total=design.sample_size.total,
            treatment=design.sample_size.treatment,
            holdout=design.sample_size.holdout,
        ),
        sample_size_unrounded=PerArmFigures(*design.sample_size_unrounded),
        mde=MdeResult(absolute=design.mde_absolute, relative=design.mde_relative),
        power=design.power,
        alpha=request.alpha,
        alpha_per_comparison=design.alpha_per_comparison,
        duration_days=design.duration_days,
        expected_conversions=PerArmFigures(*expected) if expected is not None else None,
        method=design.method,
        warnings=[*percent, *design.warnings],
    )


def _grid(request: HoldoutPowerCurveRequest) -> np.ndarray:
    if (request.sample_sizes is None) == (request.sample_size_range is None):
        raise invalid_field("sample_sizes", "give exactly one of `sample_sizes` and `sample_size_range`")
    if request.sample_sizes is not None:
        return np.array(sorted(set(request.sample_sizes)), dtype=float)
    grid = request.sample_size_range
    assert grid is not None
    if grid.max <= grid.min:
        raise invalid_field("sample_size_range.max", "must be larger than `min`")
    if grid.scale == "log":
        points = np.geomspace(grid.min, grid.max, grid.points)
    else:
        points = np.linspace(grid.min, grid.max, grid.points)
    return np.unique(np.round(points))


def _x_scale(request: HoldoutPowerCurveRequest) -> Literal["linear", "log"]:
    grid = request.sample_size_range
    return "log" if grid is not None and grid.scale == "log" else "linear"


def holdout_power_curve(request: HoldoutPowerCurveRequest) -> HoldoutPowerCurveResponse:
    """Power (or MDE) at each total sample size of the grid, and a chart of it."""
    sizes = _grid(request)
    percent = _check_mde_as_percent(msgspec.structs.replace(request, solve_for=request.curve))
    problem = _problem(request, "power" if request.curve == "power" else "mde")
    # The design at the largest size gives the absolute MDE (or target power) and the warnings.
    reference = power_stats.solve_holdout_design(replace(problem, sample_size=int(sizes[-1])))
    if request.curve == "power":
        powers = power_stats.power_curve(problem, sizes)
        mdes = np.full(sizes.shape, reference.mde_absolute)
    else:
        mdes = power_stats.mde_curve(problem, sizes)
        powers = np.full(sizes.shape, reference.power)
    baseline = abs(request.metric.baseline)
    points = [
        CurvePoint(
            sample_size=int(n),
            power=float(p),
            mde_absolute=float(m),
            mde_relative=float(m / baseline) if baseline > 0 else 0.0,
        )
        for n, p, m in zip(sizes, powers, mdes, strict=True)
    ]
    return HoldoutPowerCurveResponse(
        curve=request.curve,
        points=points,
        chart=sample_size_curve_chart(
            request.curve,
            [(p.sample_size, p.power if request.curve == "power" else p.mde_relative) for p in points],
            _x_scale(request),
        ),
        warnings=[*percent, *reference.warnings],
    )
