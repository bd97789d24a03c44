"""One channel of a holdout test, analysed end to end from its two arms' sufficient statistics.

:func:`analyze_channel` (fixed horizon) and :func:`analyze_sequential_channel` (always valid, mSPRT)
compute their lift each its own way and share everything else (one body, one result type,
:class:`ChannelAnalysis`, whose ``sequential`` part is set only by the sequential analysis). They
combine the single-purpose modules:

* arm means and standard errors (:mod:`stats.arm_statistics`); CUPED (:mod:`stats.cuped`) applies
  automatically when both arms carry covariate aggregates, and the lift then uses the adjusted means
  and standard errors;
* absolute and relative lift, incremental outcome, iROAS, cost per incremental conversion, MDE
  (:mod:`stats.lift`), or the always-valid lift (:mod:`stats.sequential`);
* sample-ratio mismatch against the planned holdout fraction (:mod:`stats.srm`);
* the decision (:mod:`stats.decision`).

Each channel's ``p_value_adjusted`` starts equal to its own p-value (a family of one). With several
channels the caller passes all analyses to :func:`apply_holm`, which Holm-adjusts the p-values
(:mod:`stats.multiplicity`) and re-takes each decision on the adjusted p-value.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Self

from stats.arm_statistics import ArmSummary, MetricKind
from stats.cuped import CupedAdjustment, cuped_adjust
from stats.decision import Decision, decide
from stats.errors import InvalidProblem
from stats.lift import (
    AbsoluteLift,
    CostPerIncremental,
    RelativeLift,
    ScaledEstimate,
    absolute_lift,
    cost_per_incremental,
    incremental_outcome,
    iroas,
    minimum_detectable_effect,
    relative_lift,
    validate_probability,
)
from stats.multiplicity import holm_adjust_with_missing
from stats.sequential import (
    EarlierLook,
    SequentialLift,
    always_valid_difference,
    combine_looks,
    sequential_detectable_effect,
)
from stats.srm import SrmResult, sample_ratio_mismatch

# Below these counts the normal approximation behind the intervals is rough.
MIN_CONVERSIONS_FOR_NORMAL = 10
MIN_UNITS_FOR_NORMAL = 30


@dataclass(frozen=True)
class ArmResult:
    """One arm as reported: units, raw mean (the conversion rate for a proportion) and its SE."""

    units: int
    mean: float
    std_error: float


@dataclass(frozen=True)
class MinimumDetectableEffect:
    """The true lift the test could detect with ``power`` given the observed standard error."""

    absolute: float
    relative: float | None
    power: float


@dataclass(frozen=True)
class SequentialLooks:
    """The always-valid figures of a sequential analysis.

    ``combined`` holds the confidence-sequence bounds and always-valid p-value combined over the looks
    so far (running intersection and minimum); ``this_look`` the same figures from this look alone,
    which the caller stores to combine at later looks.
    """

    combined: SequentialLift
    this_look: SequentialLift


@dataclass(frozen=True)
class ChannelAnalysis:
    """Analysis of one channel, fixed-horizon or sequential; ``p_value`` is the absolute-lift p-value.

    For a sequential analysis ``absolute_lift`` carries the always-valid bounds and p-value combined
    over the looks so far, ``relative_lift`` is None (the confidence sequence is for the absolute
    lift), ``mde`` is the lift the sequence would detect now with the given power (half-width +
    z_power·SE; None when there are no bounds) and ``sequential`` holds the looks' figures.
    """

    kind: MetricKind
    alpha: float
    treatment: ArmResult
    holdout: ArmResult
    absolute_lift: AbsoluteLift
    relative_lift: RelativeLift | None
    p_value: float | None
    p_value_adjusted: float | None
    incremental: ScaledEstimate
    iroas: ScaledEstimate | None
    cost_per_incremental: CostPerIncremental | None
    srm: SrmResult | None
    cuped: CupedAdjustment | None
    mde: MinimumDetectableEffect | None
    minimum_effect: float | None
    decision: Decision
    warnings: tuple[str, ...]
    data_problems: tuple[str, ...]
    sequential: SequentialLooks | None = None

    @property
    def srm_p_value(self) -> float | None:
        """The sample-ratio-mismatch p-value, None when no holdout fraction was given."""
        return None if self.srm is None else self.srm.p_value

    def with_adjusted_p_value(self, p_value_adjusted: float | None) -> Self:
        """This analysis with a multiplicity-adjusted p-value and the decision re-taken on it."""
        evidence = _Evidence(
            kind=self.kind,
            alpha=self.alpha,
            lift=self.absolute_lift,
            srm=self.srm,
            data_problems=self.data_problems,
            mde=self.mde,
            minimum_effect=self.minimum_effect,
            iroas=self.iroas,
        )
        return dataclasses.replace(
            self, p_value_adjusted=p_value_adjusted, decision=_decide(evidence, p_value_adjusted)
        )


def apply_holm(analyses: Sequence[ChannelAnalysis]) -> list[ChannelAnalysis]:
    """Holm-adjust the channels' p-values together and re-take each decision on its adjusted p-value.

    A channel whose p-value is None (no test possible) stays None and does not count in the family.
    """
    adjusted = holm_adjust_with_missing([analysis.p_value for analysis in analyses])
    return [analysis.with_adjusted_p_value(p) for analysis, p in zip(analyses, adjusted, strict=True)]


# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Common:
    """What both analyses compute the same way."""

    kind: MetricKind
    treatment: ArmResult
    holdout: ArmResult
    cuped: CupedAdjustment | None
    treatment_mean: float
    treatment_std_error: float
    holdout_mean: float
    holdout_std_error: float
    srm: SrmResult | None
    minimum_effect: float | None
    spend: float | None
    value_per_conversion: float | None
    warnings: tuple[str, ...]
    data_problems: tuple[str, ...]


def _metric_kind(
    treatment: ArmSummary, holdout: ArmSummary, spend: float | None, value_per_conversion: float | None
) -> MetricKind:
    """The arms' common metric kind; refuses mixed kinds and a value per conversion that cannot apply."""
    if treatment.kind != holdout.kind:
        raise InvalidProblem(f"{holdout.field_path}.kind", "must be the same metric kind as the treatment arm")
    kind = treatment.kind
    if value_per_conversion is not None and kind == "mean":
        raise InvalidProblem(
            "value_per_conversion", "applies only to conversion metrics; a mean metric is taken to be revenue"
        )
    if value_per_conversion is not None and spend is None:
        raise InvalidProblem("spend", "is needed to turn value_per_conversion into a return on spend")
    return kind


def _sample_size_warnings(kind: MetricKind, arms: tuple[ArmSummary, ArmSummary]) -> list[str]:
    """One warning per arm too small for the normal approximation behind the intervals."""
    warnings: list[str] = []
    for arm in arms:
        if kind == "proportion":
            if min(arm.total, arm.units - arm.total) < MIN_CONVERSIONS_FOR_NORMAL:
                warnings.append(
                    f"{arm.field_path} has fewer than {MIN_CONVERSIONS_FOR_NORMAL} conversions or "
                    "non-conversions; the intervals are only rough."
                )
        elif arm.units < MIN_UNITS_FOR_NORMAL:
            warnings.append(
                f"{arm.field_path} has fewer than {MIN_UNITS_FOR_NORMAL} units; the intervals are only rough."
            )
    return warnings


@dataclass(frozen=True)
class _Means:
    """The arms' means and standard errors the lift is taken from: CUPED-adjusted when covariates are given."""

    cuped: CupedAdjustment | None
    treatment_mean: float
    treatment_std_error: float
    holdout_mean: float
    holdout_std_error: float
    warnings: tuple[str, ...]
    data_problems: tuple[str, ...]


def _means(treatment: ArmSummary, holdout: ArmSummary) -> _Means:
    """CUPED-adjust the means when both arms carry covariate aggregates (refused when only one does)."""
    warnings: list[str] = []
    problems: list[str] = []
    cuped: CupedAdjustment | None = None
    if treatment.has_covariate != holdout.has_covariate:
        missing = holdout if treatment.has_covariate else treatment
        raise InvalidProblem(
            f"{missing.field_path}.covariate_sum",
            "is missing while the other arm has covariate aggregates; give them for both arms or neither",
        )
    t_mean, t_se, h_mean, h_se = treatment.mean, treatment.std_error, holdout.mean, holdout.std_error
    if treatment.has_covariate:
        cuped = cuped_adjust(treatment, holdout)
        warnings.extend(cuped.warnings)
        if cuped.covariate_imbalanced:
            problems.append(
                "The pre-period covariate differs between treatment and holdout, so the split does not look random."
            )
        t_mean, t_se = cuped.treatment.mean, cuped.treatment.std_error
        h_mean, h_se = cuped.holdout.mean, cuped.holdout.std_error
    if not (t_se > 0.0 or h_se > 0.0):
        problems.append("Neither arm shows any variation in the metric, so no test is possible.")
    return _Means(cuped, t_mean, t_se, h_mean, h_se, tuple(warnings), tuple(problems))


def _minimum_effect(minimum_relative_lift: float | None, holdout_mean: float) -> tuple[float | None, tuple[str, ...]]:
    """The smallest absolute lift worth having (relative lift times the holdout mean), with any warning."""
    if minimum_relative_lift is None:
        return None, ()
    if not math.isfinite(minimum_relative_lift) or not minimum_relative_lift > 0.0:
        raise InvalidProblem("minimum_relative_lift", "must be a finite number greater than 0")
    if holdout_mean > 0.0:
        return minimum_relative_lift * holdout_mean, ()
    return None, ("The holdout mean is not above 0, so the minimum relative lift cannot be used.",)


def _common(
    treatment: ArmSummary,
    holdout: ArmSummary,
    *,
    holdout_fraction: float | None,
    minimum_relative_lift: float | None,
    spend: float | None,
    value_per_conversion: float | None,
) -> _Common:
    """Check the arms and compute what both analyses share: means, SRM check, minimum effect, warnings."""
    kind = _metric_kind(treatment, holdout, spend, value_per_conversion)
    warnings = _sample_size_warnings(kind, (treatment, holdout))
    means = _means(treatment, holdout)
    warnings.extend(means.warnings)

    srm: SrmResult | None = None
    if holdout_fraction is not None:
        fraction = validate_probability(holdout_fraction, "holdout_fraction")
        srm = sample_ratio_mismatch([treatment.units, holdout.units], [1.0 - fraction, fraction], field="units")

    minimum_effect, minimum_warnings = _minimum_effect(minimum_relative_lift, holdout.mean)
    warnings.extend(minimum_warnings)

    return _Common(
        kind=kind,
        treatment=ArmResult(treatment.units, treatment.mean, treatment.std_error),
        holdout=ArmResult(holdout.units, holdout.mean, holdout.std_error),
        cuped=means.cuped,
        treatment_mean=means.treatment_mean,
        treatment_std_error=means.treatment_std_error,
        holdout_mean=means.holdout_mean,
        holdout_std_error=means.holdout_std_error,
        srm=srm,
        minimum_effect=minimum_effect,
        spend=spend,
        value_per_conversion=value_per_conversion,
        warnings=tuple(warnings),
        data_problems=means.data_problems,
    )


def _money(
    kind: MetricKind, lift: AbsoluteLift, treatment_units: int, spend: float | None, value_per_conversion: float | None
) -> tuple[ScaledEstimate, ScaledEstimate | None, CostPerIncremental | None, tuple[str, ...]]:
    incremental = incremental_outcome(lift, treatment_units)
    if spend is None:
        return incremental, None, None, ()
    roas: ScaledEstimate | None = None
    cost: CostPerIncremental | None = None
    warnings: list[str] = []
    if kind == "mean":
        roas = iroas(incremental, spend=spend)
    else:
        cost = cost_per_incremental(incremental, spend=spend)
        if value_per_conversion is not None:
            roas = iroas(incremental, spend=spend, value_per_unit=value_per_conversion)
        if cost is not None:
            warnings.extend(cost.warnings)
    if spend == 0.0:
        warnings.append("Spend is 0, so there is no return on spend or cost per conversion to report.")
    return incremental, roas, cost, tuple(warnings)


_PENDING: Final = Decision(action="investigate", reason="not decided yet")


@dataclass(frozen=True)
class _Evidence:
    """What a decision weighs besides the p-value (which Holm's adjustment may replace)."""

    kind: MetricKind
    alpha: float
    lift: AbsoluteLift
    srm: SrmResult | None
    data_problems: tuple[str, ...]
    mde: MinimumDetectableEffect | None
    minimum_effect: float | None
    iroas: ScaledEstimate | None


def _decide(evidence: _Evidence, p_value: float | None) -> Decision:
    srm, mde, roas = evidence.srm, evidence.mde, evidence.iroas
    return decide(
        kind=evidence.kind,
        alpha=evidence.alpha,
        estimate=evidence.lift.estimate,
        ci_low=evidence.lift.ci_low,
        ci_high=evidence.lift.ci_high,
        p_value=p_value,
        srm_flagged=srm is not None and srm.flagged,
        srm_p_value=None if srm is None else srm.p_value,
        data_problems=evidence.data_problems,
        mde=None if mde is None else mde.absolute,
        mde_relative=None if mde is None else mde.relative,
        minimum_effect=evidence.minimum_effect,
        iroas_ci_low=None if roas is None else roas.ci_low,
        iroas_ci_high=None if roas is None else roas.ci_high,
    )


def _analysis(
    common: _Common,
    *,
    alpha: float,
    power: float,
    lift: AbsoluteLift,
    relative: RelativeLift | None,
    mde_absolute: float | None,
    sequential: SequentialLooks | None,
    lift_warnings: tuple[str, ...],
) -> ChannelAnalysis:
    """What both analyses do once they have their lift: money figures, MDE, decision, the result."""
    incremental, roas, cost, money_warnings = _money(
        common.kind, lift, common.treatment.units, common.spend, common.value_per_conversion
    )
    mde = (
        None
        if mde_absolute is None
        else MinimumDetectableEffect(
            absolute=mde_absolute,
            relative=_relative_to(mde_absolute, common.holdout_mean),
            power=power,
        )
    )
    undecided = ChannelAnalysis(
        kind=common.kind,
        alpha=alpha,
        treatment=common.treatment,
        holdout=common.holdout,
        absolute_lift=lift,
        relative_lift=relative,
        p_value=lift.p_value,
        p_value_adjusted=lift.p_value,
        incremental=incremental,
        iroas=roas,
        cost_per_incremental=cost,
        srm=common.srm,
        cuped=common.cuped,
        mde=mde,
        minimum_effect=common.minimum_effect,
        decision=_PENDING,
        warnings=_unique(common.warnings + lift_warnings + money_warnings),
        data_problems=common.data_problems,
        sequential=sequential,
    )
    # The decision is taken in one place, on the channel's own p-value until Holm's adjustment replaces it.
    return undecided.with_adjusted_p_value(lift.p_value)


def analyze_channel(
    treatment: ArmSummary,
    holdout: ArmSummary,
    *,
    alpha: float = 0.05,
    spend: float | None = None,
    value_per_conversion: float | None = None,
    holdout_fraction: float | None = None,
    minimum_relative_lift: float | None = None,
    power: float = 0.8,
) -> ChannelAnalysis:
    """Fixed-horizon analysis of one channel.

    ``spend`` enables cost per incremental conversion (proportions) and iROAS (means, read as revenue;
    proportions when ``value_per_conversion`` is given too). ``holdout_fraction`` (the planned share held
    out) enables the SRM check. ``minimum_relative_lift`` (e.g. 0.05 for 5%) is the smallest lift worth
    having, used by the decision to call a test conclusive. ``power`` is the power of the reported MDE.
    """
    alpha = validate_probability(alpha, "alpha")
    power = validate_probability(power, "power")
    common = _common(
        treatment,
        holdout,
        holdout_fraction=holdout_fraction,
        minimum_relative_lift=minimum_relative_lift,
        spend=spend,
        value_per_conversion=value_per_conversion,
    )
    absolute = absolute_lift(
        common.treatment_mean,
        common.treatment_std_error,
        common.holdout_mean,
        common.holdout_std_error,
        alpha=alpha,
    )
    relative = relative_lift(
        common.treatment_mean,
        common.treatment_std_error,
        common.holdout_mean,
        common.holdout_std_error,
        alpha=alpha,
    )
    return _analysis(
        common,
        alpha=alpha,
        power=power,
        lift=absolute,
        relative=relative,
        mde_absolute=minimum_detectable_effect(absolute.std_error, alpha=alpha, power=power),
        sequential=None,
        lift_warnings=absolute.warnings + relative.warnings,
    )


def analyze_sequential_channel(
    treatment: ArmSummary,
    holdout: ArmSummary,
    *,
    mixing_variance: float,
    alpha: float = 0.05,
    spend: float | None = None,
    value_per_conversion: float | None = None,
    holdout_fraction: float | None = None,
    minimum_relative_lift: float | None = None,
    power: float = 0.8,
    earlier_looks: Sequence[EarlierLook] = (),
) -> ChannelAnalysis:
    """Always-valid analysis of one channel at one look (mSPRT, :mod:`stats.sequential`).

    ``mixing_variance`` is τ², fixed before the test and the same at every look (see
    :func:`stats.sequential.mixing_variance_for_horizon`). ``earlier_looks`` (same α and τ²) are
    combined with this one by :func:`stats.sequential.combine_looks`: the lift's bounds are the running
    intersection and its p-value the running minimum; ``sequential.this_look`` keeps this look's own figures.
    Other arguments as :func:`analyze_channel`. No relative lift is reported: the confidence sequence is
    for the absolute lift.
    """
    alpha = validate_probability(alpha, "alpha")
    power = validate_probability(power, "power")
    common = _common(
        treatment,
        holdout,
        holdout_fraction=holdout_fraction,
        minimum_relative_lift=minimum_relative_lift,
        spend=spend,
        value_per_conversion=value_per_conversion,
    )
    # x * x, not x**2: past the double range it is inf (refused by always_valid_difference), not OverflowError
    variance = (
        common.treatment_std_error * common.treatment_std_error + common.holdout_std_error * common.holdout_std_error
    )
    this_look = always_valid_difference(
        common.treatment_mean - common.holdout_mean, variance, mixing_variance=mixing_variance, alpha=alpha
    )
    lift = combine_looks(this_look, earlier_looks)
    as_absolute = AbsoluteLift(
        estimate=lift.estimate,
        std_error=lift.std_error,
        ci_low=lift.ci_low,
        ci_high=lift.ci_high,
        p_value=lift.p_value,
        z_statistic=None,
    )
    detectable = (
        None
        if this_look.ci_high is None
        else sequential_detectable_effect(this_look.std_error, this_look.ci_high - this_look.estimate, power=power)
    )
    return _analysis(
        common,
        alpha=alpha,
        power=power,
        lift=as_absolute,
        relative=None,
        mde_absolute=detectable,
        sequential=SequentialLooks(combined=lift, this_look=this_look),
        lift_warnings=lift.warnings,
    )


def _relative_to(value: float, holdout_mean: float) -> float | None:
    """``value / holdout_mean``; None when the holdout mean is not above 0 or the ratio overflows."""
    if not holdout_mean > 0.0:
        return None
    ratio = value / holdout_mean
    return ratio if math.isfinite(ratio) else None


def _unique(messages: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(messages))
