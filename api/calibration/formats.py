"""Lift measurements as the calibration input of Robyn, Meridian and PyMC-Marketing.

Each builder refuses (422) what its library would refuse, with the library's reason:

- Robyn (``R/R/checks.R``, ``check_calibration``; columns as in ``demo/demo.R``): ``liftAbs`` the total
  incremental KPI over ``liftStartDate``..``liftEndDate`` on the treated group, ``spend`` that group's
  spend, ``confidence`` = 1 − p-value ("if frequentist experiment, you may use 1 - pvalue"; Robyn warns
  below 0.8), ``metric`` = the model's ``dep_var``, ``calibration_scope`` = ``immediate`` (the demo's
  advice for lift tests).
- Meridian (``meridian/model/calibration/prior_builder.py``,
  ``CalibrationBuilder.with_incrementality_experiment_result``; ``base.ExperimentResult`` and
  ``base.ExperimentInfo``): refuses a standard error ≤ 0, a significantly negative result
  (``point_estimate + 1.96·standard_error < 0``), a spend ≤ 0 and a start date not before the end date.
  The point estimate is ROI (incremental revenue / spend) for a revenue KPI and incremental KPI per unit
  of spend (IKPC) otherwise, which Meridian turns into ROI with its ``revenue_per_kpi``.
- PyMC-Marketing (``pymc_marketing/mmm/lift_test.py``): the model's lift is
  ``saturation(x + delta_x) − saturation(x)`` per period of the MMM, compared with ``delta_y`` by a
  Gamma likelihood of scale ``sigma``; ``assert_monotonic`` refuses ``delta_x · delta_y < 0``. Rows are
  per-period averages over the test: with P = test days / ``period_days``, ``delta_x = spend / P``,
  ``delta_y = incremental / P``, ``sigma = se / P``; ``x`` is 0 for an average-ROI test (the test
  compared spending with not spending) and the usual spend per period for a marginal one. A geo test
  gives one row per treated market (the MMM's ``geo`` dimension) carrying an equal share: ``x``,
  ``delta_x`` and ``delta_y`` divided by the n markets and ``sigma / √n``, so that the n rows together
  weigh exactly as much as the one pooled measurement (n observations of sd ``sigma/√n`` have the
  precision of one of sd ``sigma/n``, the sd of the share).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable

import msgspec

from api.calibration.measurements import ExperimentMeasurements, LiftMeasurement
from api.calibration.schemas import (
    CalibrationContext,
    CalibrationTestDates,
    MeridianCalibration,
    MeridianExperimentResult,
    PymcMarketingCalibration,
    PymcMarketingLiftTest,
    RobynCalibration,
    RobynCalibrationRow,
)
from api.http.csv_cells import spreadsheet_safe
from api.http.errors import Conflict, Unprocessable

ROBYN_LOW_CONFIDENCE = 0.8  # check_calibration warns below it
MERIDIAN_Z_95 = 1.96  # meridian.model.calibration.constants.CONFIDENCE_LEVEL_Z_SCORE_95


def context_dates(measurements: ExperimentMeasurements) -> CalibrationTestDates:
    start = min(m.start for m in measurements.channels)
    end = max(m.end for m in measurements.channels)
    return CalibrationTestDates(start=start, end=end, days=(end - start).days + 1, basis=measurements.dates_basis)


def context(measurements: ExperimentMeasurements) -> CalibrationContext:
    return CalibrationContext(
        experiment_id=measurements.experiment_id,
        experiment_kind=measurements.experiment_kind,
        roi_kind=measurements.roi_kind,
        kpi_type=measurements.kpi_type,
        confidence_level=measurements.confidence_level,
        method=measurements.method,
        warnings=measurements.warnings,
        dataset_version=measurements.dataset_version,
        test_dates=context_dates(measurements),
    )


def _refuse(problems: list[tuple[str, str]], library: str) -> None:
    if problems:
        raise Unprocessable(
            f"{library} would refuse this experiment: " + "; ".join(f"{field}: {reason}" for field, reason in problems),
            problems,
        )


def robyn(measurements: ExperimentMeasurements, kpi_name: str | None) -> RobynCalibration:
    """Robyn's ``calibration_input``: one row per channel."""
    metric = kpi_name or ("revenue" if measurements.kpi_type == "revenue" else "conversions")
    rows: list[RobynCalibrationRow] = []
    for m in measurements.channels:
        if m.p_value is None:
            raise Conflict(
                f"Channel {m.channel!r} has no p-value, so there is no confidence to give Robyn",
                [(f"channels[{m.channel}].p_value", "missing")],
            )
        rows.append(
            RobynCalibrationRow(
                channel=m.channel,
                liftStartDate=m.start,
                liftEndDate=m.end,
                liftAbs=m.incremental,
                spend=m.spend,
                confidence=1.0 - m.p_value,
                metric=metric,
                calibration_scope="immediate",
            )
        )
    warnings = list(measurements.warnings)
    low = [r.channel for r in rows if r.confidence < ROBYN_LOW_CONFIDENCE]
    if low:
        warnings.append(f"Robyn calls a confidence below 0.8 low and suggests re-running the test: {', '.join(low)}")
    return RobynCalibration(
        context=msgspec.structs.replace(context(measurements), warnings=warnings),
        calibration_input=rows,
    )


def _meridian_problems(m: LiftMeasurement) -> list[tuple[str, str]]:
    where = f"experiment_results[{m.channel}]"
    se = m.roi_se
    if se is None:
        return [(f"{where}.standard_errors", "the result's interval is unbounded: there is no standard error")]
    problems: list[tuple[str, str]] = []
    if se <= 0.0:
        problems.append((f"{where}.standard_errors", f"must be positive, got {se:.6g}"))
    elif m.roi + MERIDIAN_Z_95 * se < 0.0:
        problems.append(
            (
                f"{where}.point_estimates",
                f"statistically significant negative lift: the 95% interval's upper bound is "
                f"{m.roi + MERIDIAN_Z_95 * se:.6g} < 0 (Meridian takes ROI priors on positive values)",
            )
        )
    if m.start >= m.end:
        problems.append(
            (f"{where}.experiment_start_dates", f"the start date {m.start} must be before the end date {m.end}")
        )
    return problems


def meridian(measurements: ExperimentMeasurements) -> MeridianCalibration:
    """Per channel, ``with_incrementality_experiment_result``'s arguments (one experiment each)."""
    _refuse([p for m in measurements.channels for p in _meridian_problems(m)], "Meridian")
    results = []
    for m in measurements.channels:
        assert m.roi_se is not None
        results.append(
            MeridianExperimentResult(
                channel_name=m.channel,
                point_estimates=[m.roi],
                standard_errors=[m.roi_se],
                experiment_kpi_types=[m.kpi_type],
                experiment_total_spends=[m.spend],
                experiment_start_dates=[m.start],
                experiment_end_dates=[m.end],
            )
        )
    return MeridianCalibration(context=context(measurements), experiment_results=results)


def _pymc_problems(m: LiftMeasurement) -> list[tuple[str, str]]:
    where = f"df_lift_test[{m.channel}]"
    if m.incremental * m.spend < 0.0:
        return [
            (
                f"{where}.delta_y",
                f"delta_x · delta_y < 0: spend went up by {m.spend:.6g} while the KPI changed by "
                f"{m.incremental:.6g}; PyMC-Marketing's saturation curves only increase (assert_monotonic)",
            )
        ]
    if m.incremental_se is None:
        return [(f"{where}.sigma", "the result's interval is unbounded: there is no standard deviation")]
    if m.incremental_se <= 0.0:
        return [(f"{where}.sigma", f"must be positive (the Gamma likelihood's scale), got {m.incremental_se:.6g}")]
    return []


def _lift_tests(m: LiftMeasurement, period_days: int) -> Iterable[PymcMarketingLiftTest]:
    assert m.incremental_se is not None
    periods = m.days / period_days
    x = 0.0 if m.baseline_spend is None else m.baseline_spend / periods
    shares = m.markets or (None,)
    n = len(shares)
    for market in shares:
        yield PymcMarketingLiftTest(
            channel=m.channel,
            x=x / n,
            delta_x=m.spend / periods / n,
            delta_y=m.incremental / periods / n,
            sigma=m.incremental_se / periods / math.sqrt(n),
            geo=market,
        )


def pymc_marketing(measurements: ExperimentMeasurements, period_days: int) -> PymcMarketingCalibration:
    """``df_lift_test`` rows for ``add_lift_test_measurements``, per MMM period of ``period_days`` days."""
    _refuse([p for m in measurements.channels for p in _pymc_problems(m)], "PyMC-Marketing")
    rows = [row for m in measurements.channels for row in _lift_tests(m, period_days)]
    return PymcMarketingCalibration(context=context(measurements), period_days=period_days, df_lift_test=rows)


def as_csv(rows: list[RobynCalibrationRow] | list[PymcMarketingLiftTest]) -> str:
    """The rows as CSV with a header line; the columns are the structs' fields (``geo`` only when set). Text
    that a spreadsheet would take for a formula (a channel named ``=1+1``) is prefixed with ``'``
    (:mod:`api.http.csv_cells`); numbers are written as they are."""
    records = msgspec.to_builtins(rows)
    columns = list(dict.fromkeys(key for record in records for key in record))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: spreadsheet_safe(value) for key, value in record.items()} for record in records)
    return out.getvalue()
