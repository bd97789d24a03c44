"""One lift measurement per channel, read from an experiment's results (computed by ``api.results``).

The holdout and geo results code paths compute the lift; this module only gathers, per channel, what
every MMM's calibration input is made of: the test's dates, its spend, its incremental KPI with a
standard error, its p-value, and whether its ROI is average or marginal.

Standard errors are read from the results' intervals by the normal approximation
``se = (ci_high − ci_low) / (2·z_{(1+c)/2})`` at the results' confidence level ``c``: exact for the
holdout tests' Wald intervals, a normal summary of the geo methods' conformal or test-inversion ones.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal
from uuid import UUID

import asyncpg
import numpy as np

from api.calibration.schemas import KpiType
from api.experiments.holdout_dates import holdout_test_dates, utc_today
from api.experiments.schemas import HoldoutTestDates, TestDatesBasis
from api.experiments.service import fetch_experiment_row
from api.fields.interval import Interval
from api.geo.schemas import GeoMethod, GeoResults, MultiCellGeoResults
from api.http.errors import Conflict, invalid_field
from api.jobs.progress import ProgressReporter
from api.results.geo import compute_geo_results
from api.results.geo_cells import cell_run
from api.results.geo_run import GeoRun, load_geo_run
from api.results.schemas import ChannelResult, HoldoutResults
from api.results.service import ResultsQuery, compute_results
from stats.intervals import interval_standard_error

RoiKindName = Literal["average", "marginal"]
AVERAGE_ROI_TEST_TYPES = frozenset({"holdback", "go-dark"})


def roi_kind(experiment: Any) -> RoiKindName:
    """Whether the experiment measured the average or the marginal ROI of its channel.

    A holdout test compares exposed with unexposed units: average ROI. A geo test reads the design's
    ``test_type`` when it has one: ``holdback`` and ``go-dark`` compare spending with not spending
    (average ROI); ``heavy-up`` adds spend on top of business as usual (marginal ROI). A geo design
    without ``test_type`` is a holdback, as GeoLift's tests are: average.
    """
    if experiment["kind"] != "geo":
        return "average"
    test_type = (experiment["design"] or {}).get("test_type")
    return "average" if test_type is None or test_type in AVERAGE_ROI_TEST_TYPES else "marginal"


@dataclass(frozen=True)
class LiftMeasurement:
    """One channel's test: incremental KPI (in the KPI's unit) over ``start``..``end`` for ``spend``."""

    channel: str
    start: date
    end: date
    incremental: float
    incremental_se: float | None  # None when the interval is unbounded
    spend: float
    p_value: float | None
    kpi_type: KpiType
    markets: tuple[str, ...] = ()  # geo tests: the treated markets
    baseline_spend: float | None = None  # marginal tests: spend over the test had it run as usual

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def roi(self) -> float:
        return self.incremental / self.spend

    @property
    def roi_se(self) -> float | None:
        return None if self.incremental_se is None else self.incremental_se / self.spend


@dataclass(frozen=True)
class ExperimentMeasurements:
    experiment_id: UUID
    experiment_kind: Literal["holdout", "geo"]
    roi_kind: RoiKindName
    kpi_type: KpiType
    confidence_level: float
    method: GeoMethod | None
    channels: list[LiftMeasurement]
    warnings: list[str]
    dataset_version: int | None = None  # geo: the version of the dataset the lift was computed on
    dates_basis: TestDatesBasis = "planned"  # geo tests: their test_period


def _scaled(interval: Interval, factor: float) -> Interval:
    def scale(value: float | None) -> float | None:
        return None if value is None else value * factor

    return Interval(scale(interval.estimate), scale(interval.ci_low), scale(interval.ci_high))


def _holdout_period(experiment: Any, warnings: list[str]) -> HoldoutTestDates:
    """The test's actual dates, else its planned ones (with a warning); 409 when it has neither."""
    dates = holdout_test_dates(experiment, utc_today())
    if dates is None:
        raise Conflict(
            "The test has no dates: it never ran and has no planned `test_period`. PATCH its status to `running` "
            "when the test begins (and to `stopped` when it ends), or state the days it ran as `actual_period`",
            [("actual_period", "missing: the test never ran and has no test_period")],
        )
    if dates.basis == "so_far":
        warnings.append("The experiment is still running: the test's end date is today and its lift so far.")
    elif dates.basis == "planned":
        warnings.append(
            "The test has no actual dates: these are its planned test_period. State the days it ran as "
            "`actual_period` (PATCH) if they differ."
        )
    return dates


def _holdout_channel(
    channel: ChannelResult, period: HoldoutTestDates, kpi_type: KpiType, confidence_level: float
) -> LiftMeasurement:
    where = f"channels[{channel.channel}]"
    if channel.spend is None or channel.spend <= 0.0:
        raise Conflict(
            f"Channel {channel.channel!r} has no spend, so there is no return on spend to calibrate with: send "
            "`spend` with its treatment observations or PUT it to /v1/experiments/{id}/spend",
            [(f"{where}.spend", "missing" if channel.spend is None else "is 0")],
        )
    if kpi_type == "revenue" and channel.iroas is None:
        raise Conflict(
            f"Channel {channel.channel!r} counts conversions without a value: send `value_per_conversion` with the "
            "treatment observations (or the spend) to calibrate a revenue KPI, or ask for kpi_type=non-revenue",
            [(f"{where}.value_per_conversion", "missing")],
        )
    # Revenue: iROAS × spend is the incremental value (conversions × value per conversion, or a mean
    # metric's total); non-revenue: the incremental conversions (or metric total) themselves.
    incremental = (
        channel.incremental
        if channel.iroas is None or kpi_type == "non-revenue"
        else (_scaled(channel.iroas, channel.spend))
    )
    assert incremental.estimate is not None
    return LiftMeasurement(
        channel=channel.channel,
        start=period.start,
        end=period.end,
        incremental=incremental.estimate,
        incremental_se=interval_standard_error(incremental.ci_low, incremental.ci_high, confidence_level),
        spend=channel.spend,
        p_value=channel.p_value,
        kpi_type=kpi_type,
    )


def _holdout_measurements(
    experiment: Any, results: HoldoutResults, kpi_type: KpiType | None, period: HoldoutTestDates, warnings: list[str]
) -> ExperimentMeasurements:
    # One KPI for every channel, as an MMM has one: revenue when every channel's lift is money (a mean
    # metric, or conversions with a value per conversion), else conversions.
    money = all(c.iroas is not None for c in results.channels if c.spend)
    wanted: KpiType = kpi_type or ("revenue" if money else "non-revenue")
    channels = [_holdout_channel(c, period, wanted, results.confidence_level) for c in results.channels]
    return ExperimentMeasurements(
        experiment_id=experiment["id"],
        experiment_kind="holdout",
        roi_kind=roi_kind(experiment),
        kpi_type=wanted,
        confidence_level=results.confidence_level,
        method=None,
        channels=channels,
        warnings=warnings,
        dates_basis=period.basis,
    )


def _treated_spend_over_test(run: GeoRun) -> float | None:
    """The treated markets' spend over a test of the same length, at their pre-period daily average."""
    window = run.window
    treated = np.array([window.geos.index(g) for g in run.treated])
    pre = window.spend[treated][:, window.pre]
    if np.isnan(pre).any():
        return None
    test_days = int(window.post.stop) - int(window.post.start)
    return float(pre.sum(axis=0).mean()) * test_days


def _geo_baseline_spend(experiment: Any, run: GeoRun, field: str = "spend") -> float | None:
    """409 unless the geo test (or the cell of a multi-cell test, its spend named by ``field``) has a
    spend (and, measuring marginal ROI, the usual spend it adds to); the treated markets' usual spend over
    the test for a marginal test, else None. ``trimmed_match`` reads its spend from the panel (the pairs'
    incremental cost), which its results already require."""
    if run.spend is None and run.method != "trimmed_match":
        raise Conflict(
            f"The geo experiment has no spend for {', '.join(run.treated)}, so there is no return on spend to "
            f"calibrate with: PATCH its `{field.split('[')[0]}` (the money spent on the test in the treated markets)",
            [(field, "missing")],
        )
    if roi_kind(experiment) == "average":
        return None
    baseline = _treated_spend_over_test(run)
    if baseline is None:
        raise Conflict(
            "A heavy-up test measures marginal ROI from the spend the treated markets had as usual, but the "
            "experiment's panel has no spend for every treated market and pre-period date: upload it with a "
            "`spend` column (date,geo,kpi,spend)",
            [("dataset.spend", "missing in the treated markets' pre-period")],
        )
    return baseline


def _geo_measurements(
    experiment: Any, run: GeoRun, results: GeoResults, kpi_type: KpiType | None, baseline: float | None
) -> ExperimentMeasurements:
    measurement = _geo_measurement(experiment, run, results, kpi_type, baseline, str(experiment["design"]["channel"]))
    return ExperimentMeasurements(
        experiment_id=experiment["id"],
        experiment_kind="geo",
        roi_kind=roi_kind(experiment),
        kpi_type=measurement.kpi_type,
        confidence_level=results.confidence_level,
        method=results.method,
        channels=[measurement],
        warnings=list(results.warnings),
    )


def _multi_cell_measurements(
    experiment: Any,
    runs: list[GeoRun],
    results: MultiCellGeoResults,
    kpi_type: KpiType | None,
    baselines: list[float | None],
) -> ExperimentMeasurements:
    """One measurement per cell of a multi-cell test: the cell's channel, markets, spend and lift."""
    channels = [
        _geo_measurement(experiment, run, cell.results, kpi_type, baseline, cell.channel)
        for run, cell, baseline in zip(runs, results.cells, baselines, strict=True)
    ]
    warnings = [*results.warnings, *(f"Cell {c.name}: {w}" for c in results.cells for w in c.results.warnings)]
    return ExperimentMeasurements(
        experiment_id=experiment["id"],
        experiment_kind="geo",
        roi_kind=roi_kind(experiment),
        kpi_type=channels[0].kpi_type,
        confidence_level=results.confidence_level,
        method=results.method,
        channels=channels,
        warnings=warnings,
    )


def _geo_measurement(
    experiment: Any,
    run: GeoRun,
    results: GeoResults,
    kpi_type: KpiType | None,
    baseline: float | None,
    channel: str,
) -> LiftMeasurement:
    design = experiment["design"]
    # Trimmed match estimates iROAS per unit of the pairs' spend difference (its incremental cost).
    spend = float(results.fit["incremental_cost"]) if results.method == "trimmed_match" else run.spend
    assert spend is not None
    incremental = results.incremental
    if incremental.estimate is None:
        raise Conflict("The geo result has no incremental KPI estimate", [("incremental", "missing")])
    test_start = date.fromisoformat(str(design["test_period"]["start"]))
    test_end = date.fromisoformat(str(design["test_period"]["end"]))
    return LiftMeasurement(
        channel=channel,
        start=test_start,
        end=test_end,
        incremental=incremental.estimate,
        incremental_se=interval_standard_error(incremental.ci_low, incremental.ci_high, results.confidence_level),
        spend=spend,
        p_value=results.p_value,
        kpi_type=kpi_type or "revenue",
        markets=tuple(run.treated),
        baseline_spend=baseline,
    )


async def measure(
    pool: asyncpg.Pool,
    experiment_id: UUID,
    *,
    kpi_type: KpiType | None,
    method: GeoMethod | None,
    confidence_level: float | None,
    progress: ProgressReporter,
    dataset_version: int | None = None,
) -> ExperimentMeasurements:
    """The experiment's lift per channel from its results (404 unknown, 409 without what they need); a geo
    experiment's as of ``dataset_version`` of its dataset (the latest by default)."""
    async with pool.acquire() as connection:
        experiment = await fetch_experiment_row(connection, experiment_id)
    if experiment["kind"] == "geo":
        async with pool.acquire() as connection:
            run = await load_geo_run(
                connection,
                experiment,
                method or "synthetic_control",
                confidence_level or 0.9,
                dataset_version=dataset_version,
            )
        version = run.window.dataset_version
        if run.cells is not None:  # one measurement per cell, each of its own channel
            runs = [cell_run(run, cell) for cell in run.cells]
            baselines = [_geo_baseline_spend(experiment, r, f"cells[{i}].spend") for i, r in enumerate(runs)]
            cells = await compute_geo_results(run, progress=progress)
            assert isinstance(cells, MultiCellGeoResults)
            measured = _multi_cell_measurements(experiment, runs, cells, kpi_type, baselines)
            return dataclasses.replace(measured, dataset_version=version)
        baseline = _geo_baseline_spend(experiment, run)  # before the computation: it may be long
        results = await compute_geo_results(run, progress=progress)  # no connection held meanwhile
        assert isinstance(results, GeoResults)
        return dataclasses.replace(
            _geo_measurements(experiment, run, results, kpi_type, baseline), dataset_version=version
        )
    if dataset_version is not None:
        raise invalid_field("dataset_version", "applies to geo experiments only (they read a geo dataset)")
    if method is not None:
        raise invalid_field("method", "applies to geo experiments only")
    warnings: list[str] = []
    period = _holdout_period(experiment, warnings)  # before the computation: it may be long
    query = ResultsQuery(experiment_id=experiment_id, confidence_level=confidence_level)
    holdout = await compute_results(pool, query, progress)
    assert isinstance(holdout, HoldoutResults)
    return _holdout_measurements(experiment, holdout, kpi_type, period, warnings)
