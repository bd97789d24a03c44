"""Geo-lift test design: power for given markets and market selection, shaped for the API.

The numerics are :mod:`stats.geo.power` and :mod:`stats.geo.market_selection`; every function here that
calls them is CPU work and runs in a worker thread (``asyncio.to_thread``), never on the event loop.
A market selection runs in three steps that a job spreads over workers: :func:`plan_selection`
(candidates), :func:`evaluate_selection_chunk` (their power, one chunk at a time) and
:func:`selection_result` (ranking and shaping).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from uuid import UUID

import asyncpg
import msgspec
import numpy as np

from api.backtests.schemas import GeoBacktest
from api.backtests.service import ASCM_COMPARISON_MARKET_DAYS, shape_backtest
from api.charts.power_curve import power_curve_chart
from api.experiments.revisions import geo_version_revision
from api.experiments.schemas import DesignSource, Experiment, GeoCell, GeoExperimentCreate, Period
from api.experiments.service import create_experiment, design_test_period
from api.fields.interval import finite_or_none
from api.fields.percents import percent_warnings
from api.geo_design.monitoring import check_monitoring, with_monitoring
from api.geo_design.panel import DesignPanel, load_design_panel, outline_design_panel
from api.geo_design.repository import MarketSelectionRepository
from api.geo_design.schemas import (
    DesignFit,
    DroppedConstraint,
    DurationDesign,
    ExperimentFromDesign,
    GeoPowerRequest,
    GeoPowerResult,
    MarketCandidate,
    MarketSelectionCell,
    MarketSelectionRequest,
    MarketSelectionResult,
    PowerCurvePoint,
)
from api.http.errors import NotFound, invalid_field
from api.jobs.answer import Answer
from api.jobs.progress import ProgressReporter
from api.jobs.questions import Question, answer_by_job, answer_once, ask_of_dataset, kept_answer
from api.jobs.schemas import Job
from stats.errors import InvalidProblem
from stats.geo.backtest import Backtest, backtest_design
from stats.geo.market_selection import (
    CandidatePlan,
    DesignEvaluation,
    RankedSelection,
    SelectionSpec,
    check_selection,
    design_ridge_lambda,
    design_warnings,
    evaluate_candidates,
    plan_candidates,
    rank_designs,
)
from stats.geo.multi_cell_selection import check_cell_selection, plan_cell_candidates, rank_cells, systematic_partitions
from stats.geo.power import DurationPower, Side, duration_power

Progress = Callable[[float], None]

GEO_POWER_TASK = "geo_power"
# Market-days above which a geo power request is queued without its panel being read in the API process
# (a 5,000-market panel took 8.5 s and 694 MB there before it became a job).
PANEL_CELLS_IN_REQUEST = 250_000
MARKET_SELECTION_TASK = "geo_market_selection"

TEST_DESCRIPTION = (
    "conformal test of no average effect, as experiment results run it: the estimator re-fitted on every day "
    "of the window's panel, statistic |sum of test-day residuals| (signed for a one-sided test) against its "
    "moving-block permutations; power = the probability it rejects at alpha with the test window's noise "
    "drawn afresh from the history's own residual paths and its scale from its uncertainty given the history, "
    "averaged over the lookback windows"
)


def _fit(power: DurationPower) -> DesignFit:
    return DesignFit(
        pre_rmse=power.pre_rmse,
        scaled_l2_imbalance=finite_or_none(power.scaled_l2_imbalance),
        lift_at_zero=finite_or_none(power.lift_at_zero),
    )


def _curve(power: DurationPower) -> list[PowerCurvePoint]:
    return [
        PowerCurvePoint(effect_size=e, power=p, detected=d)
        for e, p, d in zip(power.effects, power.power, power.detected, strict=True)
    ]


def _backtest(backtest: Backtest | None, panel: DesignPanel, compared: Sequence[Backtest] = ()) -> GeoBacktest | None:
    return None if backtest is None else shape_backtest(backtest, panel.dates, "design_mde", compared)


def _other_method_backtest(
    panel: DesignPanel,
    rows: Sequence[int],
    power: DurationPower,
    request: GeoPowerRequest,
    ridge_lambda: float | None,
) -> list[Backtest]:
    """The other design method (SCM for ASCM, ASCM for SCM) on the same windows, for `best_method`.

    ASCM joins only on histories of at most ``ASCM_COMPARISON_MARKET_DAYS`` control market-days (its re-fits
    cost O(T^2) per window), as in the results' backtest.
    """
    if ridge_lambda is None:
        data = panel.panel
        donors = np.delete(data, list(rows), axis=0).T
        if donors.size > ASCM_COMPARISON_MARKET_DAYS:
            return []
        other = design_ridge_lambda(data[list(rows)].mean(axis=0), donors, request.fixed_effects)
    else:
        other = None
    backtest = _design_backtest(panel, rows, power, request.alpha, request.side, request.fixed_effects, other)
    return [] if backtest is None else [backtest]


def _design_backtest(
    panel: DesignPanel,
    rows: Sequence[int],
    power: DurationPower,
    alpha: float,
    side: Side,
    fixed_effects: bool,
    ridge_lambda: float | None,
    donors: Sequence[int] | None = None,
) -> Backtest | None:
    """The design's placebo backtest at its MDE (``None`` when the history is too short for one); ``donors``
    are its controls' rows (every other market when ``None``)."""
    data = panel.panel
    try:
        return backtest_design(
            data[list(rows)],
            np.delete(data, list(rows), axis=0).T if donors is None else data[list(donors)].T,
            power.duration,
            effect=power.mde,
            alpha=alpha,
            side=side,
            fixed_effects=fixed_effects,
            ridge_lambda=ridge_lambda,
        )
    except InvalidProblem:
        return None


def _duration_design(power: DurationPower, backtest: GeoBacktest | None) -> DurationDesign:
    return DurationDesign(
        duration=power.duration,
        windows=power.windows,
        power_curve=_curve(power),
        mde=power.mde,
        mde_exact=power.mde_exact,
        power_at_mde=power.power_at_mde,
        investment=power.investment,
        treated_kpi=power.treated_kpi,
        fit=_fit(power),
        backtest=backtest,
    )


def _check_controls(panel: DesignPanel, treated: int, field: str) -> None:
    if len(panel.geos) - treated < 2:
        raise invalid_field(field, f"{treated} treated markets leave fewer than 2 of the {len(panel.geos)} as controls")


def scaled_progress(progress: Progress, start: float, width: float) -> Progress:
    """``progress`` for one step of a computation: the step's 0..1 reported as ``start`` .. ``start + width``."""
    return lambda fraction: progress(start + width * fraction)


def compute_geo_power(request: GeoPowerRequest, panel: DesignPanel, progress: Progress | None = None) -> GeoPowerResult:
    """Simulated power of the requested treatment markets for each duration (CPU work)."""
    panel = panel.without("exclude_from_controls", request.exclude_from_controls, request.treatment_markets)
    rows = panel.rows_of("treatment_markets", request.treatment_markets)
    _check_controls(panel, len(rows), "treatment_markets")
    data = panel.panel
    treated = data[list(rows)]
    donors = np.delete(data, list(rows), axis=0).T
    ridge = (
        design_ridge_lambda(treated.mean(axis=0), donors, request.fixed_effects)
        if request.method == "augmented_synthetic_control"
        else None
    )
    designs: list[DurationDesign] = []
    durations = list(dict.fromkeys(request.durations))  # a repeated duration or effect is asked once
    effects = list(dict.fromkeys(request.effect_sizes))
    for i, duration in enumerate(durations):
        power = duration_power(
            treated,
            donors,
            duration,
            effects,
            lookback_windows=request.lookback_windows,
            alpha=request.alpha,
            side=request.side,
            power_target=request.power_target,
            fixed_effects=request.fixed_effects,
            ridge_lambda=ridge,
            cost_per_kpi=request.cost_per_kpi,
            # Within its duration's share of the job: the simulation, then (the last fifth) its two backtests.
            progress=None if progress is None else scaled_progress(progress, i / len(durations), 0.8 / len(durations)),
        )
        backtest = _design_backtest(panel, rows, power, request.alpha, request.side, request.fixed_effects, ridge)
        if progress is not None:
            progress((i + 0.9) / len(durations))
        compared = _other_method_backtest(panel, rows, power, request, ridge) if backtest is not None else []
        designs.append(_duration_design(power, _backtest(backtest, panel, compared)))
        if request.monitoring == "daily":
            designs[-1] = with_monitoring(designs[-1], request.alpha)
        if progress is not None:
            progress((i + 1) / len(durations))
    total = float(data.sum())
    share = float(treated.sum() / total) if total > 0.0 else 0.0
    warnings = [
        *percent_warnings("effect_sizes", request.effect_sizes),
        *design_warnings(len(panel.geos), len(panel.dates), durations, share),
    ]
    for design in designs:
        if design.backtest is not None:
            warnings.extend(f"{design.duration} days: {w}" for w in design.backtest.warnings)
        if design.mde is None:
            best = max(point.power for point in design.power_curve)
            warnings.append(
                f"{design.duration} days: no effect size reaches power {request.power_target:g} "
                f"(best {best:.2f}); try larger effects or a longer test"
            )
    chart = power_curve_chart(
        [(f"{d.duration} days", d.power_curve) for d in designs], request.power_target, "Test length"
    )
    return GeoPowerResult(
        dataset_id=panel.dataset_id,
        treatment_markets=list(request.treatment_markets),
        method=request.method,
        side=request.side,
        alpha=request.alpha,
        power_target=request.power_target,
        lookback_windows=request.lookback_windows,
        treatment_share=share,
        history=panel.history,
        durations=designs,
        test=TEST_DESCRIPTION,
        warnings=warnings,
        chart=chart,
        excluded_from_controls=list(request.exclude_from_controls),
        dataset_version=panel.dataset_version,
    )


def _selection_panel(request: MarketSelectionRequest, panel: DesignPanel) -> DesignPanel:
    """The panel a selection simulates on: without ``exclude_from_controls`` (400 when a market is also in
    ``include`` or ``exclude``; left out of the controls, it can be neither treated nor merely untreated)."""
    both = sorted(set(request.exclude_from_controls) & set(request.exclude))
    if both:
        raise invalid_field("exclude_from_controls", f"{', '.join(map(repr, both))} also in exclude; list it once here")
    return panel.without("exclude_from_controls", request.exclude_from_controls, request.include)


def selection_spec(request: MarketSelectionRequest, panel: DesignPanel) -> SelectionSpec:
    """The numerical specification of a market selection, markets resolved to panel rows (400 when unknown)."""
    include = panel.rows_of("include", request.include)
    exclude = panel.rows_of("exclude", request.exclude)
    holdout = None
    if request.holdout is not None:
        if request.holdout.min > request.holdout.max:
            raise invalid_field("holdout", "min must not exceed max")
        holdout = (request.holdout.min, request.holdout.max)
    return SelectionSpec(
        treatment_sizes=tuple(dict.fromkeys(request.treatment_sizes)),
        durations=tuple(dict.fromkeys(request.durations)),
        effects=tuple(dict.fromkeys(request.effect_sizes)),
        lookback_windows=request.lookback_windows,
        alpha=request.alpha,
        power_target=request.power_target,
        side=request.side,
        method=request.method,
        fixed_effects=request.fixed_effects,
        include=include,
        exclude=exclude,
        cost_per_kpi=request.cost_per_kpi,
        budget=request.budget,
        holdout=holdout,
        top=request.top,
        search_budget=request.search_budget,
    )


def check_selection_request(request: MarketSelectionRequest, panel: DesignPanel) -> None:
    """Refuse, before queueing, a selection the panel cannot answer (400 naming the field)."""
    panel = _selection_panel(request, panel)
    if request.cells is not None:
        check_cell_selection(panel.panel, selection_spec(request, panel), request.cells)
        return
    check_selection(selection_spec(request, panel), len(panel.geos), len(panel.dates))


def plan_selection(request: MarketSelectionRequest, panel: DesignPanel) -> list[CandidatePlan]:
    """Every candidate set to simulate (validates the request against the panel first: 400 naming the field)."""
    panel = _selection_panel(request, panel)
    if request.cells is not None:
        return plan_cell_candidates(panel.panel, selection_spec(request, panel), request.cells)
    return plan_candidates(panel.panel, selection_spec(request, panel))


def evaluate_selection_chunk(
    request: MarketSelectionRequest,
    panel: DesignPanel,
    plans: Sequence[CandidatePlan],
    progress: Progress | None = None,
) -> list[DesignEvaluation]:
    """Simulated power of one chunk of candidates (CPU work; chunks are independent)."""
    panel = _selection_panel(request, panel)
    return evaluate_candidates(panel.panel, plans, selection_spec(request, panel), progress)


def selection_result(
    request: MarketSelectionRequest, panel: DesignPanel, evaluations: Sequence[DesignEvaluation]
) -> MarketSelectionResult:
    """Rank the evaluated designs and shape the job's result (DESIGN.md's market selection shape)."""
    panel = _selection_panel(request, panel)
    spec = selection_spec(request, panel)
    if request.cells is not None:
        return _cell_selection_result(request, panel, evaluations, spec, request.cells)
    ranked = rank_designs(evaluations, spec)
    candidates = _ranked_candidates(panel, ranked, spec)
    if request.monitoring == "daily":
        candidates = [with_monitoring(c, request.alpha) for c in candidates]
    chart = power_curve_chart(
        [(f"#{c.rank} {', '.join(c.markets)} ({c.duration} d)", c.power_curve) for c in candidates],
        request.power_target,
        "Design",
    )
    warnings = [
        *percent_warnings("effect_sizes", request.effect_sizes),
        *design_warnings(len(panel.geos), len(panel.dates), request.durations),
    ]
    if not candidates:
        warnings.append("no design met every constraint: see `dropped` for what removed them and what to relax")
    return MarketSelectionResult(
        dataset_id=panel.dataset_id,
        candidates=candidates,
        considered=ranked.considered,
        qualified=ranked.qualified,
        dropped=[DroppedConstraint(reason=d.reason, count=d.count, relax=d.relax) for d in ranked.dropped],
        ranking=ranked.ranking,
        test=TEST_DESCRIPTION,
        history=panel.history,
        warnings=warnings,
        chart=chart,
        excluded_from_controls=list(request.exclude_from_controls),
        dataset_version=panel.dataset_version,
    )


def _cell_selection_result(
    request: MarketSelectionRequest,
    panel: DesignPanel,
    evaluations: Sequence[DesignEvaluation],
    spec: SelectionSpec,
    cells: int,
) -> MarketSelectionResult:
    """A multi-cell selection's result: each cell's ranked candidates (:mod:`stats.geo.multi_cell_selection`)."""
    partitions = systematic_partitions(panel.panel, spec.exclude, cells)
    ranked = rank_cells(evaluations, spec, cells)
    shaped = [
        MarketSelectionCell(
            cell=k + 1,
            partition=[panel.geos[i] for i in partitions[k]],
            candidates=_ranked_candidates(panel, cell_ranked, spec),
            qualified=cell_ranked.qualified,
            dropped=[DroppedConstraint(reason=d.reason, count=d.count, relax=d.relax) for d in cell_ranked.dropped],
        )
        for k, cell_ranked in enumerate(ranked)
    ]
    chart = power_curve_chart(
        [
            (f"cell {cell.cell} #{c.rank} {', '.join(c.markets)} ({c.duration} d)", c.power_curve)
            for cell in shaped
            for c in cell.candidates
        ],
        request.power_target,
        "Design",
    )
    warnings = [
        *percent_warnings("effect_sizes", request.effect_sizes),
        *design_warnings(len(panel.geos), len(panel.dates), request.durations),
    ]
    empty = [str(cell.cell) for cell in shaped if not cell.candidates]
    if empty:
        warnings.append(
            f"no design of cell {', '.join(empty)} met every constraint: see its `dropped` for what to relax"
        )
    return MarketSelectionResult(
        dataset_id=panel.dataset_id,
        candidates=[],
        considered=sum(r.considered for r in ranked),
        qualified=sum(r.qualified for r in ranked),
        dropped=[],
        ranking=ranked[0].ranking + "; per cell, design r being every cell's candidate r",
        test=TEST_DESCRIPTION,
        history=panel.history,
        warnings=warnings,
        chart=chart,
        cells=shaped,
        excluded_from_controls=list(request.exclude_from_controls),
        dataset_version=panel.dataset_version,
    )


def _ranked_candidates(panel: DesignPanel, ranked: RankedSelection, spec: SelectionSpec) -> list[MarketCandidate]:
    """The kept designs as candidates, each with its placebo backtest and warnings."""
    candidates: list[MarketCandidate] = []
    for design in ranked.designs:
        power = design.power
        assert power.mde is not None and power.power_at_mde is not None
        backtest = _design_backtest(
            panel,
            design.evaluation.markets,
            power,
            spec.alpha,
            spec.side,
            spec.fixed_effects,
            design.evaluation.ridge_lambda,
            design.evaluation.donors,
        )
        candidates.append(
            MarketCandidate(
                rank=design.rank,
                markets=[panel.geos[i] for i in design.evaluation.markets],
                duration=power.duration,
                mde=power.mde,
                mde_exact=power.mde_exact,
                power_at_mde=power.power_at_mde,
                investment=power.investment,
                treatment_share=design.evaluation.treatment_share,
                holdout_share=design.holdout_share,
                power_curve=_curve(power),
                fit=_fit(power),
                backtest=_backtest(backtest, panel),
                source=design.evaluation.source,
                warnings=design_warnings(
                    len(panel.geos), len(panel.dates), [power.duration], design.evaluation.treatment_share, spec.holdout
                )
                + list(backtest.warnings if backtest is not None else ()),
            )
        )
    return candidates


def _ranked(candidates: list[MarketCandidate], rank: int, job_id: UUID, where: str) -> MarketCandidate:
    """The candidate of that rank, or 400 naming ``rank`` with the ranks listed."""
    candidate = next((c for c in candidates if c.rank == rank), None)
    if candidate is None:
        listed = f"1..{len(candidates)}" if candidates else "none: no design qualified"
        raise invalid_field("rank", f"{where}selection {job_id} lists the ranks {listed}")
    return candidate


async def create_experiment_from_design(
    pool: asyncpg.Pool, job_id: UUID, body: ExperimentFromDesign, idempotency_key: str | None
) -> tuple[Experiment, bool]:
    """A draft geo experiment of candidate ``body.rank`` of the finished selection ``job_id``, linked to it.

    Markets, dataset and pre-period (the selection's history) come from the design; the test period
    defaults to the candidate's duration right after the history. A multi-cell selection gives a
    multi-cell experiment: cell ``k`` is cell ``k``'s candidate of that rank (all of one duration). 404 when
    no finished selection has that id; 400 naming ``rank`` or ``test_period`` when they do not fit it.
    """
    async with pool.acquire() as connection:
        row = await MarketSelectionRepository(connection).get(job_id)
    if row is None:
        raise NotFound(
            f"No finished market selection {job_id}: the id is unknown or its job has not succeeded "
            f"(see GET /v1/jobs/{job_id})"
        )
    result = msgspec.convert(row["result"], MarketSelectionResult)
    if result.cells is not None:
        chosen = [_ranked(cell.candidates, body.rank, job_id, f"cell {cell.cell} of ") for cell in result.cells]
        if len({c.duration for c in chosen}) > 1:
            durations = ", ".join(f"cell {k + 1}: {c.duration} d" for k, c in enumerate(chosen))
            raise invalid_field("rank", f"the cells' candidates {body.rank} last different times ({durations})")
        cells: list[GeoCell] | None = [
            GeoCell(name=f"cell_{k + 1}", treatment_markets=list(c.markets)) for k, c in enumerate(chosen)
        ]
        markets = None
    else:
        chosen = [_ranked(result.candidates, body.rank, job_id, "")]
        cells, markets = None, list(chosen[0].markets)
    duration = chosen[0].duration
    history = result.history
    test = design_test_period(history.end, duration, body.test_period, f"candidate {body.rank} was simulated for")
    create = GeoExperimentCreate(
        name=body.name,
        dataset_id=result.dataset_id,
        channel=body.channel,
        treatment_markets=markets,
        cells=cells,
        pre_period=Period(start=history.start, end=history.end),
        test_period=test,
        spend=body.spend,
        exclude_from_controls=list(result.excluded_from_controls),
    )
    return await create_experiment(pool, create, idempotency_key, DesignSource(job_id=job_id, rank=body.rank))


def geo_power_question(payload: bytes, dataset_id: UUID, version: int) -> Question:
    """The question a geo power request asks: its parameters (``payload``, the request with its markets spelt as
    the dataset spells them and the version it reads) on that version of the dataset."""
    return ask_of_dataset(GEO_POWER_TASK, payload, dataset_id, geo_version_revision(dataset_id, version))


async def answer_geo_power(
    pool: asyncpg.Pool, queue_pool: asyncpg.Pool, request: GeoPowerRequest, wait_seconds: float
) -> Answer[GeoPowerResult]:
    """The power of the design kept for this question (:mod:`api.jobs.questions`: the same parameters on the
    same dataset version), else computed within ``wait_seconds`` (joining an identical computation in flight),
    else the ``geo_power`` job computing it (one per question). The dataset's row is read first (404, 400 for
    dates and markets), then the panel, so a history it cannot answer (409) is refused before any job is
    queued; a panel of more than ``PANEL_CELLS_IN_REQUEST`` market-days is not read here at all and goes to a
    worker at once, whose job fails with the 409 a gap or an all-zero KPI would have answered. A queued job
    reads the dataset version read here, whatever is appended meanwhile."""
    check_monitoring(request.monitoring, request.side, multi_cell=False)
    async with pool.acquire() as connection:
        outline = await outline_design_panel(connection, request.dataset_id, request.history, request.dataset_version)
        request = msgspec.structs.replace(
            request,
            treatment_markets=outline.resolve_markets("treatment_markets", request.treatment_markets),
            exclude_from_controls=outline.resolve_markets("exclude_from_controls", request.exclude_from_controls),
            dataset_version=outline.dataset_version,
        )
        payload = msgspec.json.encode(request)
        question = geo_power_question(payload, request.dataset_id, outline.dataset_version)
        kept = await kept_answer(connection, question, GeoPowerResult)
        if kept is not None:
            return Answer(value=kept[0], computed_at=kept[1])
        if outline.cells > PANEL_CELLS_IN_REQUEST:
            wait_seconds = 0.0  # loading it here would hold the API for seconds and hundreds of MB: a worker does
        else:
            await load_design_panel(connection, request.dataset_id, request.history, request.dataset_version)

    async def compute(progress: ProgressReporter) -> GeoPowerResult:
        async with pool.acquire() as connection:  # the panel just read, from this process's cache
            panel = await load_design_panel(connection, request.dataset_id, request.history, request.dataset_version)
        return await asyncio.to_thread(compute_geo_power, request, panel, progress)

    return await answer_once(
        pool, queue_pool, GEO_POWER_TASK, "/v1/geo/power", payload, question, GeoPowerResult, compute, wait_seconds
    )


async def submit_market_selection(
    pool: asyncpg.Pool, queue_pool: asyncpg.Pool, request: MarketSelectionRequest
) -> Answer[Job]:
    """The ``geo_market_selection`` job for ``request``, queued once the panel can answer it (else 400, 404,
    409 at once); the job already queued or running for an identical request (the same parameters on the same
    dataset version), or the finished job that answered one (as the answer's value). The dataset's row settles
    the markets and the version (404, 400); a panel of more than ``PANEL_CELLS_IN_REQUEST`` market-days is not
    read here at all, as for geo power: the job's planning step checks it, and fails with the 400 or 409 this
    request would have answered."""
    check_monitoring(request.monitoring, request.side, multi_cell=request.cells is not None)
    async with pool.acquire() as connection:
        outline = await outline_design_panel(connection, request.dataset_id, request.history, request.dataset_version)
        # Every chunk of the job reads the version read here, whatever is appended meanwhile.
        request = msgspec.structs.replace(
            request,
            include=outline.resolve_markets("include", request.include),
            exclude=outline.resolve_markets("exclude", request.exclude),
            exclude_from_controls=outline.resolve_markets("exclude_from_controls", request.exclude_from_controls),
            dataset_version=outline.dataset_version,
        )
        if outline.cells <= PANEL_CELLS_IN_REQUEST:
            panel = await load_design_panel(connection, request.dataset_id, request.history, outline.dataset_version)
            check_selection_request(request, panel)
    payload = msgspec.json.encode(request)
    revision = geo_version_revision(request.dataset_id, outline.dataset_version)
    question = ask_of_dataset(MARKET_SELECTION_TASK, payload, request.dataset_id, revision)
    return await answer_by_job(pool, queue_pool, MARKET_SELECTION_TASK, "/v1/geo/market-selection", payload, question)
