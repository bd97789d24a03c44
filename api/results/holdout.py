"""Holdout results: read the stored sufficient statistics, analyse each channel, adjust across channels."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any
from uuid import UUID

import msgspec

from api.charts.forest_plot import forest_plot
from api.db.database import Connection
from api.experiments.holdout_dates import holdout_test_dates, utc_today
from api.experiments.repository import ExperimentRepository
from api.fields.interval import Interval
from api.http.errors import Conflict
from api.results.repository import ResultsRepository
from api.results.schemas import (
    ArmFigures,
    ChannelResult,
    Cuped,
    Decision,
    DetectableEffect,
    HoldoutResults,
    Lift,
    OutcomeCoverage,
)
from stats.arm_statistics import ArmSummary
from stats.errors import InvalidProblem
from stats.holdout_analysis import (
    ChannelAnalysis,
    analyze_channel,
    analyze_sequential_channel,
    apply_holm,
)
from stats.lift import CostPerIncremental, ScaledEstimate
from stats.sequential import EarlierLook, mixing_variance_for_horizon

ARM_NAMES = ("treatment", "holdout")
FIXED_METHOD = {
    "proportion": "unpooled (Wald) z-test for the difference; relative lift by the delta method on the log ratio",
    "mean": "Welch (unpooled) normal test for the difference; relative lift by the delta method on the log ratio",
}
SEQUENTIAL_METHOD = (
    "mixture SPRT always-valid p-value and confidence sequence (Johari, Pekelis, Walsh 2017), combined over "
    "the looks so far: running minimum of the p-value, running intersection of the bounds"
)
SEQUENTIAL_RELATIVE_UNAVAILABLE = (
    "sequential=true: the mixture SPRT's confidence sequence is always valid for the absolute lift (a difference "
    "of means) only; a ratio to the holdout's mean, itself still moving between looks, has no always-valid "
    "interval here, so the relative lift is left out rather than given an interval that would not hold at every "
    "look. Read `lift.absolute` (divide by `holdout.mean` for a rough relative figure), or the fixed-horizon "
    "relative lift with sequential=false once the test has ended"
)


def _arm(row: Mapping[str, Any], kind: str, field: str) -> ArmSummary:
    covariates = {
        "covariate_sum": row["covariate_sum"],
        "covariate_sum_squares": row["covariate_sum_squares"],
        "cross_sum": row["cross_sum"],
        "field_path": field,
    }
    if kind == "proportion":
        covariates["covariate_shift"] = row.get("covariate_shift", 0.0)
        return ArmSummary.from_proportion(int(row["units"]), int(row["conversions"]), **covariates)
    return ArmSummary.from_mean(
        int(row["units"]),
        float(row["sum"]),
        float(row["sum_squares"]),
        shift=row.get("shift", 0.0),
        covariate_shift=row.get("covariate_shift", 0.0),
        **covariates,
    )


def _interval(value: ScaledEstimate | CostPerIncremental | None) -> Interval | None:
    return None if value is None else Interval(value.estimate, value.ci_low, value.ci_high)


def _arm_figures(arm: Any, kind: str) -> ArmFigures:
    return ArmFigures(
        units=arm.units, mean=arm.mean, std_error=arm.std_error, rate=arm.mean if kind == "proportion" else None
    )


def _channel_result(name: str, analysis: ChannelAnalysis, data: _ChannelData) -> ChannelResult:
    kind = analysis.kind
    cuped = analysis.cuped
    absolute = analysis.absolute_lift
    relative = analysis.relative_lift
    if relative is None:  # sequential: the confidence sequence is for the absolute lift only
        lift = Lift(
            absolute=Interval(absolute.estimate, absolute.ci_low, absolute.ci_high),
            relative=Interval(None, None, None),
            relative_unavailable=SEQUENTIAL_RELATIVE_UNAVAILABLE,
        )
    else:
        fieller = relative.fieller
        lift = Lift(
            absolute=Interval(absolute.estimate, absolute.ci_low, absolute.ci_high),
            relative=Interval(relative.estimate, relative.ci_low, relative.ci_high),
            relative_fieller=None if fieller is None else Interval(relative.estimate, fieller.ci_low, fieller.ci_high),
        )
    if analysis.sequential is None:
        method = FIXED_METHOD[kind]
    else:
        looks = analysis.sequential.combined.looks
        method = f"{SEQUENTIAL_METHOD} ({looks} look{'s' if looks > 1 else ''} so far)"
    mde = analysis.mde
    if cuped is not None:
        method += "; CUPED (Deng, Xu, Kohavi, Walker 2013) with θ from the pooled arms"
    return ChannelResult(
        channel=name,
        metric=kind,
        method=method,
        treatment=_arm_figures(analysis.treatment, kind),
        holdout=_arm_figures(analysis.holdout, kind),
        lift=lift,
        p_value=analysis.p_value,
        p_value_adjusted=analysis.p_value_adjusted,
        incremental=Interval(analysis.incremental.estimate, analysis.incremental.ci_low, analysis.incremental.ci_high),
        spend=None if data.arms[0]["spend"] is None else float(data.arms[0]["spend"]),
        iroas=_interval(analysis.iroas),
        cost_per_incremental=_interval(analysis.cost_per_incremental),
        srm_p_value=analysis.srm_p_value,
        cuped=None
        if cuped is None
        else Cuped(
            theta=cuped.theta,
            variance_reduction=cuped.variance_reduction,
            covariate_balance_p_value=cuped.covariate_balance_p_value,
        ),
        mde=None if mde is None else DetectableEffect(absolute=mde.absolute, relative=mde.relative, power=mde.power),
        decision=Decision(action=analysis.decision.action, reason=analysis.decision.reason),
        warnings=[*analysis.data_problems, *data.notes, *analysis.warnings],
    )


def _planned_final_variance(
    treatment: ArmSummary, holdout: ArmSummary, planned_units: int | None, holdout_fraction: float
) -> float | None:
    """The variance of the lift expected at the planned end of the test, ``s_T²/N_T + s_H²/N_H``, with the
    per-unit variances observed now and the planned arm sizes; ``None`` without a plan (or past it)."""
    if planned_units is None:
        return None
    planned_holdout = planned_units * holdout_fraction
    planned_treatment = planned_units - planned_holdout
    if planned_treatment < treatment.units or planned_holdout < holdout.units:
        return None
    per_unit_treatment = treatment.std_error**2 * treatment.units
    per_unit_holdout = holdout.std_error**2 * holdout.units
    return per_unit_treatment / planned_treatment + per_unit_holdout / planned_holdout


async def _mixing_variance(
    repository: ResultsRepository, experiment_id: UUID, position: int, variance: float, alpha: float
) -> float:
    """τ² of the channel's mixture SPRT: fixed at the first sequential look and reused at every later one
    (a τ² that changed between looks would void the guarantee), tuned to the variance expected at the
    experiment's ``planned_units`` when it has a plan, else to the first look's own variance."""
    return await repository.mixing_variance(experiment_id, position, mixing_variance_for_horizon(variance, alpha=alpha))


@dataclass(frozen=True)
class _ChannelData:
    """One channel's arms (keyed 0 treatment, 1 holdout) in the shape of an observations row."""

    position: int
    holdout_fraction: float
    arms: dict[int, Any]  # an asyncpg Record or a dict with the same keys
    notes: list[str]


async def _from_observations(repository: ResultsRepository, experiment_id: UUID) -> dict[str, _ChannelData]:
    rows = await repository.observations(experiment_id)
    channels: dict[str, _ChannelData] = {}
    for row in rows:
        data = channels.setdefault(
            row["channel"], _ChannelData(row["channel_position"], row["holdout_fraction"], {}, [])
        )
        if row["arm"] is not None:
            data.arms[row["arm"]] = row
    missing = [
        f"{channel}/{ARM_NAMES[code]}" for channel, d in channels.items() for code in (0, 1) if code not in d.arms
    ]
    if missing:
        raise Conflict(
            f"No observations yet for {', '.join(missing)}; POST them to /v1/experiments/{experiment_id}/observations "
            f"(aggregates) or send unit-level outcomes to /v1/experiments/{experiment_id}/outcomes",
            [("observations", f"missing {m}") for m in missing],
        )
    return channels


async def _from_outcomes(
    repository: ResultsRepository, experiment_id: UUID, kind: str
) -> tuple[dict[str, _ChannelData], OutcomeCoverage]:
    """Per channel and arm sufficient statistics aggregated in SQL from the outcomes joined to assignments."""
    meta = await repository.channels_with_spend(experiment_id)
    shifts = await repository.outcome_shifts(experiment_id)
    shift = 0.0 if kind == "proportion" else float(shifts["shift"] or 0.0)
    covariate_shift = float(shifts["covariate_shift"] or 0.0)
    aggregates = await repository.aggregate_outcomes(experiment_id, shift, covariate_shift)
    by_key = {(r["position"], r["arm"]): r for r in aggregates}
    stored = await repository.count_outcomes(experiment_id)
    matched = sum(int(r["units"]) for r in aggregates if r["position"] == 0)
    unassigned = stored - matched
    channels: dict[str, _ChannelData] = {}
    missing: list[str] = []
    for channel in meta:
        data = _ChannelData(channel["channel_position"], channel["holdout_fraction"], {}, [])
        channels[channel["channel"]] = data
        arms = {code: by_key.get((channel["channel_position"], code)) for code in (0, 1)}
        present = {code: a for code, a in arms.items() if a is not None and int(a["units"]) > 0}
        missing += [f"{channel['channel']}/{ARM_NAMES[code]}" for code in (0, 1) if code not in present]
        if len(present) < 2:
            continue
        # CUPED needs the covariate of every analysed unit in both arms; otherwise neither arm uses it.
        with_covariate = all(int(a["covariate_units"]) == int(a["units"]) for a in present.values())
        if not with_covariate and any(int(a["covariate_units"]) > 0 for a in present.values()):
            data.notes.append("only some outcomes carry a covariate, so CUPED is not applied")
        for code, aggregate in present.items():
            units = int(aggregate["units"])
            lacking = int(aggregate["assigned"]) - units
            if lacking:
                data.notes.append(
                    f"{lacking:,} assigned {ARM_NAMES[code]} units have no outcome and are left out; if they simply "
                    "did not convert or spend, send 0 for them"
                )
            data.arms[code] = {
                "units": units,
                "conversions": round(aggregate["sum"]) if kind == "proportion" else None,
                "sum": aggregate["sum"],
                "sum_squares": aggregate["sum_squares"],
                "covariate_sum": aggregate["covariate_sum"] if with_covariate else None,
                "covariate_sum_squares": aggregate["covariate_sum_squares"] if with_covariate else None,
                "cross_sum": aggregate["cross_sum"] if with_covariate else None,
                "spend": channel["spend"] if code == 0 else None,
                "value_per_conversion": channel["value_per_conversion"] if code == 0 else None,
                "shift": shift,
                "covariate_shift": covariate_shift,
            }
    if missing:
        raise Conflict(
            f"No outcomes of assigned units yet for {', '.join(missing)}"
            + (f" ({unassigned:,} outcomes belong to units never assigned)" if unassigned else ""),
            [("outcomes", f"missing {m}") for m in missing],
        )
    coverage = OutcomeCoverage(
        units_with_outcome=matched,
        unassigned_outcomes=unassigned,
        assigned_without_outcome=sum(int(r["assigned"]) - int(r["units"]) for r in aggregates if r["position"] == 0),
    )
    return channels, coverage


def _channel_arms(data: _ChannelData, kind: str, source: str, channel: str) -> tuple[ArmSummary, ArmSummary]:
    """The channel's treatment and holdout arms; 409 for stored data that cannot be analysed yet."""
    arms = data.arms
    try:
        treatment = _arm(arms[0], kind, f"{source}[{channel}].treatment")
        holdout = _arm(arms[1], kind, f"{source}[{channel}].holdout")
    except InvalidProblem as problem:  # stored data that cannot be analysed yet: a state, not a bad request
        raise Conflict(
            f"The stored {source} cannot be analysed yet: {problem.field}: {problem.reason}",
            [(problem.field, problem.reason)],
        ) from problem
    return treatment, holdout


async def _sequential_mixing_variance(
    repository: ResultsRepository,
    experiment_id: UUID,
    data: _ChannelData,
    variance: float,
    alpha: float,
    source: str,
    channel: str,
) -> float:
    """The channel's stored τ² (see :func:`_mixing_variance`); 409 when the lift's variance overflows it."""
    try:
        return await _mixing_variance(repository, experiment_id, data.position, variance, alpha)
    except InvalidProblem as problem:  # sums so large the mixture's variance overflows: the data's state
        reason = (
            f"the variance of the lift ({variance:.3g}) is too large for the always-valid "
            "test; the fixed-horizon results (sequential=false) can still be read"
        )
        raise Conflict(
            f"The stored {source} cannot be analysed sequentially: {source}[{channel}]: {reason}",
            [(f"{source}[{channel}]", reason)],
        ) from problem


async def _sequential_analysis(
    repository: ResultsRepository,
    experiment_id: UUID,
    data: _ChannelData,
    treatment: ArmSummary,
    holdout: ArmSummary,
    tau2: float,
    common: dict[str, Any],
) -> ChannelAnalysis:
    """The always-valid analysis of one channel given its earlier looks; this look is recorded for the next."""
    alpha = common["alpha"]
    earlier = [
        EarlierLook(r["ci_low"], r["ci_high"], r["p_value"])
        for r in await repository.earlier_looks(experiment_id, data.position, alpha, tau2)
    ]
    sequential_analysis = await asyncio.to_thread(
        partial(
            analyze_sequential_channel,
            treatment,
            holdout,
            mixing_variance=tau2,
            earlier_looks=earlier,
            **common,
        )
    )
    assert sequential_analysis.sequential is not None
    look = sequential_analysis.sequential.this_look
    await repository.record_look(
        experiment_id,
        data.position,
        alpha,
        tau2,
        look.estimate,
        look.ci_low,
        look.ci_high,
        look.p_value,
    )
    return sequential_analysis


async def holdout_results(
    connection: Connection,
    experiment: Any,
    *,
    confidence_level: float,
    sequential: bool,
    minimum_lift: float | None,
) -> HoldoutResults:
    """Analyse every channel of a holdout experiment from its observations or its unit-level outcomes."""
    experiment_id: UUID = experiment["id"]
    kind = experiment["design"]["metric"]["kind"]
    alpha = 1.0 - confidence_level
    coverage: OutcomeCoverage | None = None
    repository = ResultsRepository(connection)
    if await ExperimentRepository(connection).has_outcomes(experiment_id):
        channels, coverage = await _from_outcomes(repository, experiment_id, kind)
    else:
        channels = await _from_observations(repository, experiment_id)
    analyses: list[ChannelAnalysis] = []
    for channel, data in channels.items():
        source = "outcomes" if coverage else "observations"
        treatment, holdout = _channel_arms(data, kind, source, channel)
        common = {
            "alpha": alpha,
            "spend": data.arms[0]["spend"],
            "value_per_conversion": data.arms[0]["value_per_conversion"],
            "holdout_fraction": data.holdout_fraction,
            "minimum_relative_lift": minimum_lift,
        }
        variance = treatment.std_error**2 + holdout.std_error**2
        if sequential and variance > 0:
            horizon = _planned_final_variance(
                treatment, holdout, experiment["design"].get("planned_units"), data.holdout_fraction
            )
            tau2 = await _sequential_mixing_variance(
                repository, experiment_id, data, horizon or variance, alpha, source, channel
            )
            analyses.append(
                await _sequential_analysis(repository, experiment_id, data, treatment, holdout, tau2, common)
            )
        else:
            analyses.append(await asyncio.to_thread(partial(analyze_channel, treatment, holdout, **common)))
    # The numerics run in worker threads, never on the event loop.
    results = await asyncio.to_thread(
        _assemble, experiment_id, confidence_level, sequential, coverage, channels, analyses
    )
    return msgspec.structs.replace(results, test_dates=holdout_test_dates(experiment, utc_today()))


def _assemble(
    experiment_id: UUID,
    confidence_level: float,
    sequential: bool,
    coverage: OutcomeCoverage | None,
    channels: dict[str, _ChannelData],
    analyses: list[ChannelAnalysis],
) -> HoldoutResults:
    """Holm's adjustment across channels, then the response with its chart."""
    adjusted = apply_holm(analyses)
    results = [
        _channel_result(name, analysis, data) for (name, data), analysis in zip(channels.items(), adjusted, strict=True)
    ]
    return HoldoutResults(
        experiment_id=str(experiment_id),
        confidence_level=confidence_level,
        sequential=sequential,
        data_source="outcomes" if coverage is not None else "observations",
        outcomes=coverage,
        channels=results,
        chart=forest_plot(results, confidence_level),
    )
