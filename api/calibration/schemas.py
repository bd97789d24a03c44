"""Response bodies of ``GET /v1/experiments/{id}/calibration``: lift results as each open MMM's input.

Each export is tagged by ``kind`` (``robyn``, ``meridian``, ``pymc-marketing``, the ``format`` asked for),
as results are (``holdout``, ``geo``), so a job's result can be told apart by the same field.
Field names are the libraries' own, so a body can be handed to them unchanged: Robyn's
``calibration_input`` columns, the keyword arguments of Meridian's
``CalibrationBuilder.with_incrementality_experiment_result`` and the columns of PyMC-Marketing's
``df_lift_test`` for ``add_lift_test_measurements``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from uuid import UUID

from msgspec import Meta, Struct

CalibrationFormat = Literal["robyn", "meridian", "pymc-marketing"]
KpiType = Literal["revenue", "non-revenue"]
RoiKind = Annotated[
    Literal["average", "marginal"],
    Meta(
        description="`average`: the test compared spending with not spending (a holdout, holdback or go-dark test), "
        "so its ROI is the channel's average ROI over the spend. `marginal`: the test added spend on top of "
        "business as usual (heavy-up), so its ROI is the return on the last units of spend."
    ),
]
ExperimentKind = Literal["holdout", "geo"]


class CalibrationTestDates(Struct, frozen=True):
    """The days of the test the lift was measured over (what Robyn's and Meridian's date fields carry)."""

    start: Annotated[date, Meta(description="First day of the test.")]
    end: Annotated[date, Meta(description="Last day of the test.")]
    days: Annotated[int, Meta(ge=1, description="Days from `start` to `end`, both included.")]
    basis: Annotated[
        Literal["actual", "so_far", "planned"],
        Meta(
            description="Holdout tests: `actual` (the days the test ran, its `actual_period`), `so_far` (still "
            "running: the end is today, UTC) or `planned` (no actual dates: its `test_period`). Geo tests: "
            "`planned`, their `test_period`."
        ),
    ]


class CalibrationContext(Struct, frozen=True):
    """What every export says about the measurement behind it."""

    experiment_id: UUID
    experiment_kind: ExperimentKind
    roi_kind: RoiKind
    kpi_type: Annotated[
        KpiType,
        Meta(
            description="`revenue` when the incremental outcome is money (a mean metric, a conversion metric with "
            "`value_per_conversion`, or a geo KPI, unless `kpi_type` was asked), else `non-revenue` (conversions)."
        ),
    ]
    confidence_level: Annotated[
        float, Meta(description="Level of the result intervals the standard errors are read from.")
    ]
    method: Annotated[str | None, Meta(description="Geo estimator the lift comes from; null for holdout tests.")]
    warnings: list[str]
    test_dates: Annotated[
        CalibrationTestDates, Meta(description="The test's dates (from the first channel's start to the last's end).")
    ]
    dataset_version: Annotated[
        int | None,
        Meta(description="Geo tests: the version of the dataset the lift was computed on; null for holdout."),
    ] = None


class RobynCalibrationRow(Struct, frozen=True):
    """One row of Robyn's ``calibration_input`` (``robyn_inputs(calibration_input = …)``)."""

    channel: Annotated[str, Meta(description="The channel; rename it to the MMM's paid media variable if it differs.")]
    liftStartDate: Annotated[date, Meta(description="First day of the test.")]
    liftEndDate: Annotated[date, Meta(description="Last day of the test.")]
    liftAbs: Annotated[float, Meta(description="Total incremental KPI over the test, in the KPI's unit.")]
    spend: Annotated[float, Meta(description="Spend on the treated group during the test.")]
    confidence: Annotated[
        float, Meta(ge=0.0, le=1.0, description="1 − p-value, as Robyn's demo advises for frequentist tests.")
    ]
    metric: Annotated[str, Meta(description="The MMM's dependent variable (`dep_var`); set with `kpi_name`.")]
    calibration_scope: Literal["immediate"]


class RobynCalibration(Struct, frozen=True, tag="robyn", tag_field="kind"):
    """Robyn's ``calibration_input`` rows (also served as ``text/csv`` with exactly these columns)."""

    context: CalibrationContext
    calibration_input: list[RobynCalibrationRow]


class MeridianExperimentResult(Struct, frozen=True):
    """Keyword arguments of ``CalibrationBuilder.with_incrementality_experiment_result`` for one channel:
    ``builder.with_incrementality_experiment_result(r.pop("channel_name"), **r)``."""

    channel_name: str
    point_estimates: Annotated[
        list[float], Meta(description="ROI (revenue KPI) or incremental KPI per unit of spend (non-revenue).")
    ]
    standard_errors: Annotated[list[float], Meta(description="Standard error of each point estimate (> 0).")]
    experiment_kpi_types: list[KpiType]
    experiment_total_spends: Annotated[list[float], Meta(description="Spend during the test (> 0).")]
    experiment_start_dates: list[date]
    experiment_end_dates: list[date]


class MeridianCalibration(Struct, frozen=True, tag="meridian", tag_field="kind"):
    """Per channel, the arguments of Meridian's ``with_incrementality_experiment_result``."""

    context: CalibrationContext
    experiment_results: list[MeridianExperimentResult]


class PymcMarketingLiftTest(Struct, frozen=True, omit_defaults=True):
    """One row of PyMC-Marketing's ``df_lift_test`` (``mmm.add_lift_test_measurements``), per MMM period."""

    channel: str
    x: Annotated[float, Meta(description="Spend per period before the test (0 for an average-ROI test).")]
    delta_x: Annotated[float, Meta(description="Change in spend per period the test made.")]
    delta_y: Annotated[float, Meta(description="Change in the KPI per period the test caused.")]
    sigma: Annotated[float, Meta(gt=0.0, description="Standard deviation of `delta_y`.")]
    geo: Annotated[str | None, Meta(description="Geo tests: the treated market (the MMM's `geo` dimension).")] = None


class PymcMarketingCalibration(Struct, frozen=True, tag="pymc-marketing", tag_field="kind"):
    """PyMC-Marketing's ``df_lift_test`` rows (also served as ``text/csv``)."""

    context: CalibrationContext
    period_days: Annotated[int, Meta(description="Days in one period of the MMM; rows are per-period averages.")]
    df_lift_test: list[PymcMarketingLiftTest]


CalibrationExport = RobynCalibration | MeridianCalibration | PymcMarketingCalibration
