"""Geo-lift market selection: candidate sets, their simulated power, and a ranking that explains itself.

The procedure of GeoLift's ``GeoLiftMarketSelection`` (Meta), with the power of :mod:`stats.geo.power`:

1. :func:`plan_candidates` -- for each treatment size, GeoLift's correlation sets
   (:func:`stats.geo.market_candidates.correlation_candidates`) plus the sets a swap search finds
   (:func:`stats.geo.market_candidates.swap_search`), every one containing the ``include`` markets and
   none of the ``exclude`` ones;
2. :func:`evaluate_candidates` -- for each candidate and test length, the simulated power over the
   effect grid, the MDE at ``power_target``, the investment and the pre-period fit (independent per
   candidate, so a job splits the list into chunks that several workers share);
3. :func:`rank_designs` -- drop the designs that break a constraint (no MDE in the grid, investment
   over the budget, holdout share outside its bounds), counting how many each constraint removed, and
   order the rest: smallest grid ``|MDE|`` first (the resolution the user asked for); among equal
   ones, the best mean of three ranks, as GeoLift averages ranks: the exact MDE (precision), the
   ``|lift at zero|`` (the estimate on the latest window without any effect, GeoLift's
   ``abs_lift_in_zero``: bias) and the scaled L2 imbalance of the pre-period fit; then the smaller
   investment, then the shorter test.

Treatment share is the treated markets' share of the KPI over the whole history; the holdout share is
``1 - treatment share`` (for a negative MDE, a go-dark test, the treatment share itself, as GeoLift).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from stats.errors import InvalidProblem
from stats.geo.augmented_synthetic_control import cross_validate_lambda
from stats.geo.market_candidates import Candidate, correlation_candidates, partner_ranking, swap_search
from stats.geo.power import DurationPower, Side, duration_power
from stats.geo.synthetic_control import demean
from stats.magnitude import check_magnitude

FloatArray = NDArray[np.float64]
Estimator = Literal["synthetic_control", "augmented_synthetic_control"]
Source = Literal["correlation", "swap_search"]

__all__ = [
    "CandidatePlan",
    "DesignEvaluation",
    "DroppedDesigns",
    "RankedSelection",
    "SelectionSpec",
    "check_selection",
    "design_ridge_lambda",
    "design_warnings",
    "evaluate_candidates",
    "plan_candidates",
    "rank_designs",
]

MIN_PRE_DAYS = 25
PRE_TO_TEST_RATIO = 4
MIN_MARKETS = 20
TREATED_SHARE_GUIDANCE = 0.5
RANKING = (
    "smallest |MDE| on the effect grid first; among equal ones the best mean of three ranks: exact MDE "
    "(precision), |lift at zero| (the estimate on the latest window with no effect: bias) and the pre-period "
    "fit's scaled L2 imbalance; then smaller investment, then shorter test"
)


@dataclass(frozen=True)
class SelectionSpec:
    """What a market selection simulates and the constraints a design must meet."""

    treatment_sizes: tuple[int, ...]
    durations: tuple[int, ...]
    effects: tuple[float, ...]
    lookback_windows: int = 1
    alpha: float = 0.1
    power_target: float = 0.8
    side: Side = "two-sided"
    method: Estimator = "synthetic_control"
    fixed_effects: bool = True
    include: tuple[int, ...] = ()
    exclude: tuple[int, ...] = ()
    cost_per_kpi: float | None = None
    budget: float | None = None
    holdout: tuple[float, float] | None = None
    top: int = 10
    search_budget: int = 400
    seed: int = 0


@dataclass(frozen=True)
class CandidatePlan:
    """A candidate set of treatment markets (panel rows) and where it came from.

    ``donors``: the rows its synthetic control may use (every other market when ``None``); ``cell``: the
    cell of a multi-cell selection it belongs to (:mod:`stats.geo.multi_cell_selection`).
    """

    markets: Candidate
    source: Source
    donors: Candidate | None = None
    cell: int | None = None


@dataclass(frozen=True)
class DesignEvaluation:
    """One candidate's simulated power for each test length, with its share of the KPI."""

    markets: Candidate
    source: Source
    treatment_share: float
    ridge_lambda: float | None
    durations: tuple[DurationPower, ...]
    donors: Candidate | None = None
    cell: int | None = None


@dataclass(frozen=True)
class DroppedDesigns:
    """How many (candidate, duration) designs one constraint removed, and what would let them back in."""

    reason: str
    count: int
    relax: str


@dataclass(frozen=True)
class RankedDesign:
    """A design that met every constraint, with its place in the ranking (1 = best)."""

    rank: int
    evaluation: DesignEvaluation
    power: DurationPower
    holdout_share: float


@dataclass(frozen=True)
class RankedSelection:
    """The designs kept (best first, at most ``top``), how many were considered, and what was dropped."""

    designs: tuple[RankedDesign, ...]
    considered: int
    qualified: int
    dropped: tuple[DroppedDesigns, ...]
    ranking: str = RANKING
    warnings: tuple[str, ...] = field(default=())


def check_selection(spec: SelectionSpec, n_markets: int, n_periods: int) -> None:
    """Refuse a specification no panel of that size can answer (``InvalidProblem`` naming the field)."""
    _check_lists(spec)
    _check_treatment_sizes(spec, n_markets)
    _check_durations(spec, n_periods)
    _check_effect_sides(spec)


def _check_lists(spec: SelectionSpec) -> None:
    """Refuse an empty list of sizes, durations or effects, all-zero effects, and a market both in and out."""
    if not spec.treatment_sizes:
        raise InvalidProblem("treatment_sizes", "must list at least one size")
    if not spec.durations:
        raise InvalidProblem("durations", "must list at least one test length")
    if not spec.effects:
        raise InvalidProblem("effect_sizes", "must list at least one effect size")
    if not any(e != 0.0 for e in spec.effects):
        raise InvalidProblem("effect_sizes", "must contain a non-zero effect size")
    if set(spec.include) & set(spec.exclude):
        raise InvalidProblem("include", "a market cannot be both included and excluded")


def _check_treatment_sizes(spec: SelectionSpec, n_markets: int) -> None:
    """Each size must hold the included markets and leave at least 2 controls among the markets not excluded."""
    eligible = n_markets - len(set(spec.exclude))
    for size in spec.treatment_sizes:
        if size < len(set(spec.include)):
            raise InvalidProblem("treatment_sizes", f"{size} is smaller than the number of included markets")
        if size > eligible - 2:
            raise InvalidProblem(
                "treatment_sizes",
                f"{size} leaves fewer than 2 control markets among the {eligible} markets not excluded",
            )


def _check_durations(spec: SelectionSpec, n_periods: int) -> None:
    """Each test length needs a pre-period at least as long (and >= 2 days) in every lookback window."""
    for duration in spec.durations:
        if n_periods - duration - spec.lookback_windows + 1 < max(duration, 2):
            raise InvalidProblem(
                "durations",
                f"{duration} days with {spec.lookback_windows} lookback windows needs at least "
                f"{2 * duration + spec.lookback_windows - 1} days of history; the dataset has {n_periods}",
            )


def _check_effect_sides(spec: SelectionSpec) -> None:
    """A one-sided test needs at least one effect size on its side."""
    if spec.side == "larger" and not any(e > 0.0 for e in spec.effects):
        raise InvalidProblem("effect_sizes", "a 'larger' test needs a positive effect size")
    if spec.side == "smaller" and not any(e < 0.0 for e in spec.effects):
        raise InvalidProblem("effect_sizes", "a 'smaller' test needs a negative effect size")


def plan_candidates(panel: FloatArray, spec: SelectionSpec) -> list[CandidatePlan]:
    """GeoLift's correlation sets for every size, then the swap search's improvements (see the module docstring)."""
    data = np.asarray(panel, dtype=np.float64)
    check_selection(spec, data.shape[0], data.shape[1])
    check_magnitude(data, "dataset")
    excluded = set(spec.exclude)
    eligible = [i for i in range(data.shape[0]) if i not in excluded]
    ranking = partner_ranking(data, eligible)
    plans: list[CandidatePlan] = []
    seen: set[Candidate] = set()
    longest = max(spec.durations)
    for size in sorted(set(spec.treatment_sizes)):
        sets = correlation_candidates(ranking, size, spec.include)
        for s in sets:
            if s not in seen:
                seen.add(s)
                plans.append(CandidatePlan(s, "correlation"))
        if spec.search_budget <= 0 or size == len(set(spec.include)):
            continue
        seeds = sets[:3] if sets else [_fill(spec.include, ranking, size)]
        budget = spec.search_budget // len(set(spec.treatment_sizes))
        found = swap_search(
            data,
            seeds,
            eligible,
            spec.include,
            longest,
            budget=budget,
            seed=spec.seed,
            fixed_effects=spec.fixed_effects,
        )
        for s in found:
            if s not in seen:
                seen.add(s)
                plans.append(CandidatePlan(s, "swap_search"))
    return plans


def _fill(include: Sequence[int], ranking: dict[int, list[int]], size: int) -> Candidate:
    """``include`` topped up with the first included market's closest partners (a seed when no set qualifies)."""
    members = list(dict.fromkeys(include))
    anchor = members[0] if members else next(iter(ranking))
    for partner in [anchor, *ranking[anchor]]:
        if len(members) >= size:
            break
        if partner not in members:
            members.append(partner)
    return tuple(sorted(members))


def design_ridge_lambda(treated: FloatArray, donors: FloatArray, fixed_effects: bool) -> float:
    """The ridge penalty ASCM would choose on the whole history (cross-validated, 1-SE rule)."""
    a, b = (demean(treated)[0], demean(donors)[0]) if fixed_effects else (treated, donors)
    return cross_validate_lambda(a, b).lambda_1se


def evaluate_candidates(
    panel: FloatArray,
    plans: Sequence[CandidatePlan],
    spec: SelectionSpec,
    progress: Callable[[float], None] | None = None,
) -> list[DesignEvaluation]:
    """Simulated power of every candidate for every test length (one chunk of a market selection)."""
    data = np.asarray(panel, dtype=np.float64)
    check_magnitude(data, "dataset")
    total_kpi = float(data.sum())
    out: list[DesignEvaluation] = []
    for i, plan in enumerate(plans):
        rows = list(plan.markets)
        treated = data[rows]
        donors = np.delete(data, rows, axis=0).T if plan.donors is None else data[list(plan.donors)].T
        ridge = (
            design_ridge_lambda(treated.mean(axis=0), donors, spec.fixed_effects)
            if spec.method == "augmented_synthetic_control"
            else None
        )
        powers = tuple(
            duration_power(
                treated,
                donors,
                duration,
                spec.effects,
                lookback_windows=spec.lookback_windows,
                alpha=spec.alpha,
                side=spec.side,
                power_target=spec.power_target,
                fixed_effects=spec.fixed_effects,
                ridge_lambda=ridge,
                cost_per_kpi=spec.cost_per_kpi,
            )
            for duration in spec.durations
        )
        share = float(treated.sum() / total_kpi) if total_kpi > 0.0 else float("nan")
        out.append(DesignEvaluation(plan.markets, plan.source, share, ridge, powers, plan.donors, plan.cell))
        if progress is not None:
            progress((i + 1) / len(plans))
    return out


def _holdout_share(treatment_share: float, mde: float) -> float:
    return treatment_share if mde < 0.0 else 1.0 - treatment_share


def _dense_rank(values: Sequence[float]) -> FloatArray:
    """Dense ranks from 1 (equal values share a rank; infinities last)."""
    uniques = np.unique(np.asarray(values, dtype=np.float64))
    return np.searchsorted(uniques, np.asarray(values, dtype=np.float64)).astype(np.float64) + 1.0


def _ranking_order(powers: Sequence[DurationPower]) -> list[int]:
    """Indices best first: grid ``|MDE|``, then the mean rank of exact MDE, ``|lift at zero|`` and imbalance."""
    if not powers:
        return []
    grid_mde = [abs(p.mde) if p.mde is not None else np.inf for p in powers]
    exact = [abs(p.mde_exact) if p.mde_exact is not None else np.inf for p in powers]
    bias = [round(abs(p.lift_at_zero), 3) if p.lift_at_zero is not None else np.inf for p in powers]
    imbalance = [p.scaled_l2_imbalance if np.isfinite(p.scaled_l2_imbalance) else np.inf for p in powers]
    score = (_dense_rank(exact) + _dense_rank(bias) + _dense_rank(imbalance)) / 3.0
    investment = [abs(p.investment) if p.investment is not None else 0.0 for p in powers]
    duration = [float(p.duration) for p in powers]
    order = np.lexsort(np.vstack([duration, investment, score, grid_mde]))
    return [int(i) for i in order]


def rank_designs(evaluations: Sequence[DesignEvaluation], spec: SelectionSpec) -> RankedSelection:
    """Filter by the constraints (counting what each removed) and order the rest (see the module docstring)."""
    kept: list[tuple[DesignEvaluation, DurationPower, float]] = []
    no_mde = over_budget = outside_holdout = 0
    considered = 0
    for evaluation in evaluations:
        for power in evaluation.durations:
            considered += 1
            if power.mde is None:
                no_mde += 1
                continue
            if spec.budget is not None and power.investment is not None and abs(power.investment) > spec.budget:
                over_budget += 1
                continue
            holdout = _holdout_share(evaluation.treatment_share, power.mde)
            if spec.holdout is not None and not spec.holdout[0] <= holdout <= spec.holdout[1]:
                outside_holdout += 1
                continue
            kept.append((evaluation, power, holdout))

    kept = [kept[i] for i in _ranking_order([p for _, p, _ in kept])]
    designs = tuple(
        RankedDesign(rank=i + 1, evaluation=e, power=p, holdout_share=h) for i, (e, p, h) in enumerate(kept[: spec.top])
    )
    dropped = []
    if no_mde:
        best = max((max(p.power) for ev in evaluations for p in ev.durations), default=0.0)
        dropped.append(
            DroppedDesigns(
                reason=f"no effect size in the grid reaches power {spec.power_target:g} (best power seen {best:.2f})",
                count=no_mde,
                relax="add larger effect sizes, longer durations or more treatment markets, or lower power_target",
            )
        )
    if over_budget:
        dropped.append(
            DroppedDesigns(
                reason=f"the investment at the MDE exceeds the budget of {spec.budget:g}",
                count=over_budget,
                relax="raise budget, or try shorter durations or smaller treatment sizes (less KPI to move)",
            )
        )
    if outside_holdout:
        assert spec.holdout is not None
        dropped.append(
            DroppedDesigns(
                reason=f"the holdout share of KPI is outside [{spec.holdout[0]:g}, {spec.holdout[1]:g}]",
                count=outside_holdout,
                relax="widen holdout, or change treatment_sizes so the treated share of KPI fits",
            )
        )
    return RankedSelection(designs=designs, considered=considered, qualified=len(kept), dropped=tuple(dropped))


def design_warnings(
    n_markets: int,
    n_periods: int,
    durations: Sequence[int],
    treatment_share: float | None = None,
    holdout: tuple[float, float] | None = None,
) -> list[str]:
    """GeoLift's guidance made explicit: pre-period length, market count, treated share of KPI."""
    warnings: list[str] = []
    longest = max(durations)
    if n_periods < PRE_TO_TEST_RATIO * longest:
        warnings.append(
            f"the history ({n_periods} days) is shorter than {PRE_TO_TEST_RATIO} times the longest test "
            f"({longest} days): the fit and the power are uncertain; GeoLift recommends at least 4x"
        )
    if n_periods - longest < MIN_PRE_DAYS:
        warnings.append(
            f"fewer than {MIN_PRE_DAYS} days of history precede the longest test window ({n_periods - longest})"
        )
    if n_markets < MIN_MARKETS:
        warnings.append(f"only {n_markets} markets: fewer than {MIN_MARKETS} leaves a thin pool of controls")
    if treatment_share is not None:
        bound = 1.0 - holdout[0] if holdout is not None else TREATED_SHARE_GUIDANCE
        if treatment_share > bound:
            warnings.append(
                f"the treated markets hold {treatment_share:.0%} of the KPI, above the bound of {bound:.0%}"
            )
    return warnings
