"""Matched-pair geo designs shaped for the API, and the paired experiment made of one.

The numerics are :mod:`stats.geo.pair_design`; :func:`compute_pair_design` is CPU work and runs in a
worker thread of a ``counterfact worker`` (a job), never on the event loop.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from uuid import UUID

import asyncpg
import msgspec
import numpy as np

from api.charts.pair_design import pair_design_chart
from api.experiments.revisions import geo_version_revision
from api.experiments.schemas import DesignSource, Experiment, GeoExperimentCreate, Period
from api.experiments.service import create_experiment, design_test_period
from api.fields.interval import finite_or_none
from api.geo_pairs.panel import RECOMMENDED_MIN_PAIRS, FloatArray, PairPanel, load_pair_panel
from api.geo_pairs.repository import PairDesignRepository
from api.geo_pairs.schemas import (
    AssignmentCheck,
    BudgetEvaluation,
    DesignPair,
    ExperimentFromPairDesign,
    MatchedPairsRequest,
    MatchedPairsResult,
    PairDesign,
)
from api.http.errors import NotFound, invalid_field
from api.jobs.answer import Answer
from api.jobs.questions import answer_by_job, ask_of_dataset
from api.jobs.schemas import Job
from stats.geo.pair_design import (
    BoolArray,
    GeoPairing,
    balanced_assignment,
    minimum_detectable_iroas,
    pair_geos,
    random_flips,
    rank_given_pairs,
    simulate_rmse,
)

Progress = Callable[[float], None]

METHOD = (
    "trimmed_match's matched-pair design (TrimmedMatchGeoXDesign; Chen, Longfils & Remy 2021): geos paired by "
    "their normalized weighted training-window response and spend, pairs numbered least similar first and "
    "dropped in that order; each design's iROAS RMSE is the trimmed match estimate's (trim up to 10%, the bound the "
    "results of an experiment made from the design then choose their trim within) over "
    "random within-pair assignments replayed on the evaluation window with no true effect, designs ranked by "
    "RMSE per share of spend from a second, independent set of assignments; minimum detectable "
    "iROAS = RMSE x (z(1 - alpha) + z(power)); the assignment is the first draw from the seed passing a sign "
    "test and an A/A test at confidence 1 - alpha"
)


MATCHED_PAIRS_TASK = "geo_matched_pairs"
# Two independent streams of the design's seed: the ranking's simulations (the stream designs were always ranked
# by, so a seed recommends what it did) and the reported figures' (independent of the ranking).
_RANKING_STREAM: tuple[int, ...] = ()
_REPORTED_STREAM = (1,)
MIN_BUDGET_SHARE_OF_RESPONSE = 1e-6


def pairing_of(request: MatchedPairsRequest, panel: PairPanel) -> GeoPairing:
    """The full pairing: the given pairs ranked, or the geos paired (400 naming ``pairs[i]`` for bad pairs)."""
    training = np.column_stack([panel.training_response, panel.training_spend])
    weights = [request.matching_weights.response, request.matching_weights.spend]
    if panel.given_pairs is not None:
        return rank_given_pairs(training, weights, panel.given_pairs, panel.geos)
    return pair_geos(training, weights, panel.total_response, panel.geos)


def check_design_request(request: MatchedPairsRequest, panel: PairPanel) -> None:
    """Refuse, before queueing, what only the panel or the pairing reveals (a budget too small for the panel, a
    pair of a geo with itself, a geo twice): every number the job will use is checked here, so that a queued
    job does not fail on its input."""
    if request.matching_weights.response + request.matching_weights.spend <= 0.0:
        raise invalid_field("matching_weights", "must not all be zero")
    for index, budget in enumerate(request.budgets):
        _refuse_a_budget_too_small(f"budgets[{index}]", budget, panel)
    pairing_of(request, panel)


def _refuse_a_budget_too_small(field: str, budget: float, panel: PairPanel) -> None:
    """400 for a budget below a millionth of the design geos' evaluation-window response, or so small that a
    geo's incremental spend (its share of the budget) is not a normal float: its simulated estimates are
    meaningless (an RMSE of millions of iROAS) or fail outright (``budgets: [5e-324]`` underflowed every
    spend delta to 0, and the trimmed match had nothing to divide by)."""
    floor = MIN_BUDGET_SHARE_OF_RESPONSE * float(panel.evaluation_response.sum())
    spend = panel.evaluation_spend
    positive = spend[spend > 0.0]
    smallest_change = 2.0 * budget / float(spend.sum()) * float(positive.min()) if positive.size else 0.0
    if budget < floor or not smallest_change >= np.finfo(np.float64).tiny:
        raise invalid_field(
            field,
            f"is too small for this panel: at least {floor:.6g} (a millionth of the design geos' response over "
            "the evaluation window), or the test cannot move the response measurably",
        )


def _sums(pairing: GeoPairing, values: FloatArray) -> FloatArray:
    return np.column_stack([values[pairing.first], values[pairing.second]])


def _evaluate(
    request: MatchedPairsRequest, kept: GeoPairing, panel: PairPanel, budget: float, treatment_response: float
) -> BudgetEvaluation:
    flips = _flips(request, kept, _REPORTED_STREAM)
    simulation = simulate_rmse(
        _sums(kept, panel.evaluation_response), _sums(kept, panel.evaluation_spend), flips, request.test_type, budget
    )
    mdi = minimum_detectable_iroas(simulation.rmse, request.alpha, request.power_target)
    return BudgetEvaluation(
        budget=budget,
        rmse=simulation.rmse,
        rmse_std=simulation.rmse_std,
        bias=simulation.bias,
        trim_rate=simulation.trim_rate,
        minimum_detectable_iroas=mdi,
        minimum_detectable_lift=finite_or_none(budget * mdi / treatment_response) if treatment_response > 0 else None,
        budget_for_target_iroas=budget * mdi / request.target_iroas if request.target_iroas else None,
    )


def _flips(request: MatchedPairsRequest, kept: GeoPairing, stream: tuple[int, ...]) -> BoolArray:
    """The design's simulated assignments of one stream of its seed (independent of the other stream's)."""
    return random_flips(np.random.default_rng([_seed(request), kept.size, *stream]), request.simulations, kept.size)


def _ranking_rmse(request: MatchedPairsRequest, kept: GeoPairing, panel: PairPanel, budget: float) -> float:
    """The RMSE the designs are ranked by, from simulations of its own: ranked on the figures it reports, the best
    design would report the luck that made it best (the minimum of 78 estimates with a 5% Monte Carlo error each:
    its RMSE under fresh assignments was 1.083 +- 0.020 times the reported one, its minimum detectable iROAS
    detected 75.7% of the time instead of 80%; ``tests/stats/test_pair_design_calibration.py``)."""
    flips = _flips(request, kept, _RANKING_STREAM)
    response, spend = _sums(kept, panel.evaluation_response), _sums(kept, panel.evaluation_spend)
    return simulate_rmse(response, spend, flips, request.test_type, budget).rmse


def _seed(request: MatchedPairsRequest) -> int:
    assert request.seed is not None, "the controller fills the seed in before queueing"
    return request.seed


def _design(request: MatchedPairsRequest, pairing: GeoPairing, panel: PairPanel, pairs_kept: int) -> PairDesign:
    kept = pairing.kept(pairs_kept)
    response, spend = _sums(kept, panel.evaluation_response), _sums(kept, panel.evaluation_spend)
    assignment = balanced_assignment(
        _seed(request), _sums(kept, panel.latest_response), response, spend, 1.0 - request.alpha
    )
    flips = assignment.treat_second
    geos = panel.geos
    pairs = [
        DesignPair(
            pair=pairing.size - pairs_kept + i + 1,
            treatment=geos[b] if flip else geos[a],
            control=geos[a] if flip else geos[b],
            distance=float(d),
        )
        for i, (a, b, d, flip) in enumerate(zip(kept.first, kept.second, kept.distance, flips, strict=True))
    ]
    treatment_response = float(np.where(flips, response[:, 1], response[:, 0]).sum())
    if request.budgets:
        budgets = [_evaluate(request, kept, panel, b, treatment_response) for b in request.budgets]
    else:  # only a target: evaluate at the budget that reaches it (from a first run at the pairs' spend)
        assert request.target_iroas is not None
        first = _evaluate(request, kept, panel, float(spend.sum()), treatment_response)
        assert first.budget_for_target_iroas is not None
        budgets = [_evaluate(request, kept, panel, first.budget_for_target_iroas, treatment_response)]
    total_spend = float(panel.evaluation_spend.sum())
    share = float(spend.sum()) / total_spend if total_spend > 0 else 1.0
    warnings: list[str] = []
    if pairs_kept < RECOMMENDED_MIN_PAIRS:
        warnings.append(f"{pairs_kept} pairs: trimmed_match recommends at least {RECOMMENDED_MIN_PAIRS}")
    if not assignment.balanced:
        warnings.append(
            f"no assignment of {assignment.draws} drawn from seed {_seed(request)} passed the sign and A/A "
            "balance checks; this is the first draw: consider another seed or fewer pairs"
        )
    aa = assignment.aa_interval
    return PairDesign(
        pairs_kept=pairs_kept,
        pairs_dropped=pairing.size - pairs_kept,
        pairs=pairs,
        treatment_markets=[p.treatment for p in pairs],
        evaluation_response=float(response.sum()),
        evaluation_spend=float(spend.sum()),
        treatment_response=treatment_response,
        share_of_spend=share,
        rmse_cost_adjusted=_ranking_rmse(request, kept, panel, budgets[0].budget) / share if share > 0 else math.inf,
        budgets=budgets,
        assignment=AssignmentCheck(
            seed=_seed(request),
            balanced=assignment.balanced,
            draws=assignment.draws,
            sign_test_positives=assignment.sign_test_positives,
            aa_ci_low=None if aa is None else finite_or_none(aa[0]),
            aa_ci_high=None if aa is None else finite_or_none(aa[1]),
        ),
        warnings=warnings,
    )


def compute_pair_design(
    request: MatchedPairsRequest, panel: PairPanel, progress: Progress | None = None
) -> MatchedPairsResult:
    """Every requested design, most pairs first (CPU work)."""
    pairing = pairing_of(request, panel)
    designs: list[PairDesign] = []
    for i, pairs_kept in enumerate(panel.pair_counts):
        designs.append(_design(request, pairing, panel, pairs_kept))
        if progress is not None:
            progress((i + 1) / len(panel.pair_counts))
    finite = [d for d in designs if math.isfinite(d.rmse_cost_adjusted)]
    recommended = min(finite, key=lambda d: d.rmse_cost_adjusted).pairs_kept if finite else None
    warnings: list[str] = []
    if panel.spend_proxy == "response":
        warnings.append(
            "the panel has no spend over the evaluation window: each geo's incremental spend is taken proportional "
            "to its response"
        )
    return MatchedPairsResult(
        dataset_id=panel.dataset_id,
        test_type=request.test_type,
        pre_period=panel.pre_period,
        evaluation_period=panel.evaluation_period,
        training_days=panel.training_days,
        evaluation_days=panel.evaluation_days,
        seed=_seed(request),
        simulations=request.simulations,
        alpha=request.alpha,
        power_target=request.power_target,
        target_iroas=request.target_iroas,
        spend_proxy="spend" if panel.spend_proxy == "spend" else "response",
        excluded=list(panel.excluded),
        left_out=None if pairing.left_out is None else panel.geos[pairing.left_out],
        designs=designs,
        recommended=recommended,
        method=METHOD,
        warnings=warnings,
        dataset_version=panel.dataset_version,
        chart=pair_design_chart(designs, recommended, request.target_iroas, budgets_given=bool(request.budgets)),
    )


async def create_experiment_from_pair_design(
    pool: asyncpg.Pool, job_id: UUID, body: ExperimentFromPairDesign, idempotency_key: str | None
) -> tuple[Experiment, bool]:
    """A draft paired geo experiment of design ``body.pairs_kept`` of the finished design ``job_id``.

    Pairs (treatment first, as randomized), treatment markets, dataset and pre-period come from the
    design; the test period defaults to the evaluation window's length right after the pre-period.
    404 when no finished design has that id; 400 naming ``pairs_kept`` or ``test_period``.
    """
    async with pool.acquire() as connection:
        row = await PairDesignRepository(connection).get(job_id)
    if row is None:
        raise NotFound(
            f"No finished matched-pair design {job_id}: the id is unknown or its job has not succeeded "
            f"(see GET /v1/jobs/{job_id})"
        )
    result = msgspec.convert(row["result"], MatchedPairsResult)
    design = next((d for d in result.designs if d.pairs_kept == body.pairs_kept), None)
    if design is None:
        listed = ", ".join(str(d.pairs_kept) for d in result.designs)
        raise invalid_field("pairs_kept", f"design {job_id} has designs keeping {listed} pairs")
    length = (result.evaluation_period.end - result.evaluation_period.start).days + 1
    test = design_test_period(result.pre_period.end, length, body.test_period, "the design was simulated on")
    create = GeoExperimentCreate(
        name=body.name,
        dataset_id=result.dataset_id,
        channel=body.channel,
        treatment_markets=list(design.treatment_markets),
        pre_period=Period(start=result.pre_period.start, end=result.pre_period.end),
        test_period=test,
        spend=body.spend,
        pairs=[[p.treatment, p.control] for p in design.pairs],
        trim_rate=body.trim_rate,
    )
    source = DesignSource(job_id=job_id, kind="matched_pairs", pairs_kept=body.pairs_kept, seed=result.seed)
    return await create_experiment(pool, create, idempotency_key, source)


async def submit_matched_pairs(
    pool: asyncpg.Pool, queue_pool: asyncpg.Pool, request: MatchedPairsRequest
) -> Answer[Job]:
    """The ``geo_matched_pairs`` job for ``request``, queued once the panel can answer it (else 400, 404, 409
    at once); the job already queued or running for an identical request (the same parameters on the same
    dataset version), or the finished job that answered one (as the answer's value). A request without a seed
    gets a random one here, so that a retried job designs (and randomizes) exactly what the first try did; it
    asks the same question as every other request without one, so it joins or reuses their design and seed."""
    async with pool.acquire() as connection:
        panel = await load_pair_panel(connection, request)
    check_design_request(request, panel)
    request = msgspec.structs.replace(request, dataset_version=panel.dataset_version)  # the job reads this version
    revision = geo_version_revision(request.dataset_id, panel.dataset_version)
    question = ask_of_dataset(MATCHED_PAIRS_TASK, msgspec.json.encode(request), request.dataset_id, revision)
    if request.seed is None:  # asked without one; the job's payload has it
        request = msgspec.structs.replace(request, seed=secrets.randbits(62))
    payload = msgspec.json.encode(request)
    return await answer_by_job(pool, queue_pool, MATCHED_PAIRS_TASK, "/v1/geo/matched-pairs", payload, question)
