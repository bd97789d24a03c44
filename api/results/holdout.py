"""Holdout results: read the stored sufficient statistics, analyse each channel, adjust across channels."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

from api.database import Connection
from api.errors import Conflict
from api.results.schemas import (
    ArmFigures,
    ChannelResult,
    Cuped,
    Decision,
    DetectableEffect,
    HoldoutResults,
    Interval,
    Lift,
)
from api.sql_queries import load_queries
from stats.arm_statistics import ArmSummary
from stats.holdout_analysis import (
    ChannelAnalysis,
    MinimumDetectableEffect,
    SequentialChannelAnalysis,
    analyze_channel,
    analyze_sequential_channel,
    apply_holm,
)
from stats.lift import CostPerIncremental, ScaledEstimate
from stats.sequential import mixing_variance_for_horizon

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))
FIXED_METHOD = {
    "proportion": "unpooled (Wald) z-test for the difference; relative lift by the delta method on the log ratio",
    "mean": "Welch (unpooled) normal test for the difference; relative lift by the delta method on the log ratio",
}
SEQUENTIAL_METHOD = "mixture SPRT always-valid p-value and confidence sequence (Johari, Pekelis, Walsh 2017)"


def _arm(row: Any, kind: str, field: str) -> ArmSummary:
    covariates = {
        "covariate_sum": row["covariate_sum"],
        "covariate_sum_squares": row["covariate_sum_squares"],
        "cross_sum": row["cross_sum"],
        "field_path": field,
    }
    if kind == "proportion":
        return ArmSummary.from_proportion(int(row["units"]), int(row["conversions"]), **covariates)
    return ArmSummary.from_mean(int(row["units"]), float(row["sum"]), float(row["sum_squares"]), **covariates)


def _interval(value: ScaledEstimate | CostPerIncremental | None) -> Interval | None:
    return None if value is None else Interval(value.estimate, value.ci_low, value.ci_high)


def _arm_figures(arm: Any, kind: str) -> ArmFigures:
    return ArmFigures(
        units=arm.units, mean=arm.mean, std_error=arm.std_error, rate=arm.mean if kind == "proportion" else None
    )


def _channel_result(name: str, analysis: ChannelAnalysis | SequentialChannelAnalysis) -> ChannelResult:
    kind = analysis.kind
    cuped = analysis.cuped
    if isinstance(analysis, ChannelAnalysis):
        absolute = analysis.absolute_lift
        relative = analysis.relative_lift
        fieller = relative.fieller
        lift = Lift(
            absolute=Interval(absolute.estimate, absolute.ci_low, absolute.ci_high),
            relative=Interval(relative.estimate, relative.ci_low, relative.ci_high),
            relative_fieller=None if fieller is None else Interval(relative.estimate, fieller.ci_low, fieller.ci_high),
        )
        mde: MinimumDetectableEffect | None = analysis.mde
        method = FIXED_METHOD[kind]
    else:
        sequential = analysis.lift
        lift = Lift(
            absolute=Interval(sequential.estimate, sequential.ci_low, sequential.ci_high),
            relative=Interval(None, None, None),
        )
        mde = analysis.detectable_effect
        method = SEQUENTIAL_METHOD
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
        warnings=[*analysis.data_problems, *analysis.warnings],
    )


def forest_plot(channels: list[ChannelResult], confidence_level: float) -> dict[str, Any]:
    """A Vega-Lite v5 forest plot: relative lift (absolute in sequential mode) per channel with its CI."""
    use_relative = all(c.lift.relative.estimate is not None for c in channels)
    values = []
    for channel in channels:
        interval = channel.lift.relative if use_relative else channel.lift.absolute
        values.append(
            {
                "channel": channel.channel,
                "estimate": interval.estimate,
                "ci_low": interval.ci_low,
                "ci_high": interval.ci_high,
                "decision": channel.decision.action,
            }
        )
    title = "Relative lift" if use_relative else "Absolute lift"
    x_axis = {"title": f"{title} ({confidence_level:.0%} CI)"} | ({"format": "%"} if use_relative else {})
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "description": f"{title} per channel with {confidence_level:.0%} confidence intervals",
        "data": {"values": values},
        "encoding": {"y": {"field": "channel", "type": "nominal", "title": None}},
        "layer": [
            {
                "mark": "rule",
                "encoding": {
                    "x": {"field": "ci_low", "type": "quantitative", "axis": x_axis},
                    "x2": {"field": "ci_high"},
                },
            },
            {
                "mark": {"type": "point", "filled": True, "size": 80},
                "encoding": {
                    "x": {"field": "estimate", "type": "quantitative"},
                    "color": {"field": "decision", "type": "nominal"},
                },
            },
            {"mark": {"type": "rule", "strokeDash": [4, 4]}, "encoding": {"x": {"datum": 0}}},
        ],
    }


async def _mixing_variance(
    connection: Connection, experiment_id: UUID, position: int, variance: float, alpha: float
) -> float:
    """τ² of the channel's mixture SPRT: fixed at the first sequential look and reused at every later one,
    tuned to that first look's variance (a τ² that changed between looks would void the guarantee)."""
    proposed = mixing_variance_for_horizon(variance, alpha=alpha)
    stored: float = await connection.fetchval(QUERIES["fix_mixing_variance"], experiment_id, position, proposed)
    return stored


async def holdout_results(
    connection: Connection,
    experiment: Any,
    *,
    confidence_level: float,
    sequential: bool,
    minimum_lift: float | None,
) -> HoldoutResults:
    """Analyse every channel of a holdout experiment from its stored observations."""
    experiment_id: UUID = experiment["id"]
    kind = experiment["design"]["metric"]["kind"]
    alpha = 1.0 - confidence_level
    rows = await connection.fetch(QUERIES["select_observations"], experiment_id)
    by_channel: dict[str, dict[int, Any]] = {}
    meta: dict[str, tuple[int, float]] = {}
    for row in rows:
        meta[row["channel"]] = (row["channel_position"], row["holdout_fraction"])
        arms = by_channel.setdefault(row["channel"], {})
        if row["arm"] is not None:
            arms[row["arm"]] = row
    missing = [
        f"{channel}/{arm}"
        for channel, arms in by_channel.items()
        for code, arm in ((0, "treatment"), (1, "holdout"))
        if code not in arms
    ]
    if missing:
        raise Conflict(
            f"No observations yet for {', '.join(missing)}; POST them to /v1/experiments/{experiment_id}/observations",
            [("observations", f"missing {m}") for m in missing],
        )
    analyses: list[ChannelAnalysis | SequentialChannelAnalysis] = []
    for channel, arms in by_channel.items():
        position, holdout_fraction = meta[channel]
        treatment = _arm(arms[0], kind, f"observations[{channel}].treatment")
        holdout = _arm(arms[1], kind, f"observations[{channel}].holdout")
        common = {
            "alpha": alpha,
            "spend": arms[0]["spend"],
            "value_per_conversion": arms[0]["value_per_conversion"],
            "holdout_fraction": holdout_fraction,
            "minimum_relative_lift": minimum_lift,
        }
        if sequential:
            variance = treatment.std_error**2 + holdout.std_error**2
            if variance > 0:
                tau2 = await _mixing_variance(connection, experiment_id, position, variance, alpha)
                analyses.append(analyze_sequential_channel(treatment, holdout, mixing_variance=tau2, **common))
                continue
        analyses.append(analyze_channel(treatment, holdout, **common))
    adjusted = apply_holm(analyses)
    channels = [_channel_result(name, a) for name, a in zip(by_channel, adjusted, strict=True)]
    return HoldoutResults(
        experiment_id=str(experiment_id),
        confidence_level=confidence_level,
        sequential=sequential,
        channels=channels,
        chart=forest_plot(channels, confidence_level),
    )
