"""Request and response bodies of the power endpoints."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

Probability = Annotated[float, Meta(gt=0.0, lt=1.0)]


class ProportionMetric(Struct, frozen=True, tag="proportion", tag_field="kind", forbid_unknown_fields=True):
    """A conversion metric."""

    baseline: Annotated[float, Meta(gt=0.0, lt=1.0, description="Holdout (control) conversion rate, in (0, 1).")]


class MeanMetric(Struct, frozen=True, tag="mean", tag_field="kind", forbid_unknown_fields=True):
    """A continuous metric per unit (revenue, orders, …)."""

    baseline: Annotated[
        float,
        Meta(ge=-1e100, le=1e100, description="Holdout (control) mean per unit; non-zero for a relative MDE."),
    ]
    std_dev: Annotated[float, Meta(ge=1e-100, le=1e100, description="Standard deviation per unit.")]


class Mde(Struct, frozen=True, forbid_unknown_fields=True):
    """The minimum detectable effect: give exactly one of `relative` and `absolute`."""

    relative: (
        Annotated[float, Meta(gt=0.0, le=1e6, description="Lift as a fraction of the baseline (0.1 = +10%).")] | None
    ) = None
    absolute: (
        Annotated[float, Meta(gt=0.0, le=1e100, description="Lift in the metric's units (0.005 = +0.5 pp).")] | None
    ) = None


class VarianceReduction(Struct, frozen=True, forbid_unknown_fields=True):
    """CUPED: a pre-period covariate explaining a share R² of the metric's variance."""

    r_squared: Annotated[float, Meta(ge=0.0, lt=1.0, description="Variance is multiplied by (1 − R²).")]


class HoldoutPowerRequest(Struct, frozen=True, forbid_unknown_fields=True):
    """A holdout-test design; `solve_for` names the one unknown among sample size, MDE and power."""

    metric: ProportionMetric | MeanMetric
    solve_for: Literal["sample_size", "mde", "power"] = "sample_size"
    alpha: Annotated[float, Meta(gt=0.0, le=0.5, description="Significance level, over all comparisons.")] = 0.05
    power: Annotated[float, Meta(gt=0.0, lt=1.0, description="Target power (when not solved for).")] | None = 0.8
    mde: Mde | None = None
    sample_size: Annotated[int, Meta(ge=4, le=10**12, description="Total units, both arms.")] | None = None
    holdout_fraction: Annotated[
        float, Meta(gt=0.0, lt=1.0, description="Share of units held out (0.02 = a 2% holdout).")
    ] = 0.5
    alternative: Literal["two-sided", "larger", "smaller"] = "two-sided"
    comparisons: Annotated[int, Meta(ge=1, le=1000, description="Channels tested at once.")] = 1
    correction: Literal["bonferroni", "none"] = "bonferroni"
    variance_reduction: VarianceReduction | None = None
    daily_units: (
        Annotated[float, Meta(gt=0.0, le=1e12, description="Units entering per day, for `duration_days`.")] | None
    ) = None


class SampleSize(Struct, frozen=True):
    """Whole units per arm, each rounded up; `total = treatment + holdout`."""

    total: int
    treatment: int
    holdout: int


class PerArmFigures(Struct, frozen=True):
    """A figure for each arm."""

    treatment: float
    holdout: float


class MdeResult(Struct, frozen=True):
    absolute: float
    relative: float


class HoldoutPowerResponse(Struct, frozen=True):
    """The solved design."""

    solve_for: str
    sample_size: SampleSize
    sample_size_unrounded: PerArmFigures
    mde: MdeResult
    power: Annotated[float, Meta(description="Achieved power at the reported sample size.")]
    alpha: float
    alpha_per_comparison: float
    duration_days: int | None
    expected_conversions: PerArmFigures | None
    method: str
    warnings: list[str]


class SampleSizeRange(Struct, frozen=True, forbid_unknown_fields=True):
    """An evenly spaced (or log-spaced) grid of total sample sizes."""

    min: Annotated[int, Meta(ge=4, le=10**12)]
    max: Annotated[int, Meta(ge=4, le=10**12)]
    points: Annotated[int, Meta(ge=2, le=500)] = 50
    scale: Literal["linear", "log"] = "linear"


class HoldoutPowerCurveRequest(HoldoutPowerRequest, frozen=True, forbid_unknown_fields=True):
    """A design plus a grid of total sample sizes; `curve` says what to draw against them."""

    curve: Literal["power", "mde"] = "power"
    sample_sizes: Annotated[list[Annotated[int, Meta(ge=4, le=10**12)]], Meta(min_length=1, max_length=500)] | None = (
        None
    )
    sample_size_range: SampleSizeRange | None = None


class CurvePoint(Struct, frozen=True):
    sample_size: int
    power: float
    mde_absolute: float
    mde_relative: float


class HoldoutPowerCurveResponse(Struct, frozen=True):
    """Points of the curve and a Vega-Lite (v5) chart of them."""

    curve: str
    points: list[CurvePoint]
    chart: dict[str, Any]
    warnings: list[str]
