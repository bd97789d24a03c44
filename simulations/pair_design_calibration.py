"""The matched-pair design's reported RMSE and minimum detectable iROAS against held-out later windows (issue 23).

Data: trimmed_match's ``example_data_for_design.csv`` (174 geos x 364 days of 2020, ``tests/data/trimmed_match``).
For each *origin* ``end`` (28-day steps from day 56 to day 336) a marketer designs on the first ``end`` days:

* **reported**: :func:`api.geo_pairs.service.compute_pair_design`, what ``POST /v1/geo/matched-pairs`` computes,
  on that pre-period (its last 28 days the evaluation window, the rest the pairing's training days; holdback,
  one budget, 200 simulations, alpha 10%, power 80%, all designs from every pair down to 10): its
  ``recommended`` design's ``rmse`` and ``minimum_detectable_iroas``;
* **realized**: the next 28 days, which the design never saw (the test period an experiment made from the
  design gets by default). The design's own randomization is applied ``assignments`` times (the first draw of
  seed ``k`` passing its sign and A/A checks, :func:`stats.geo.pair_design.balanced_assignment`, as the design draws
  its seed's), the budget is spent on the treated geos of the window as the design models it (each geo ``r s``
  of its window spend ``s``), the reported minimum detectable iROAS is added to their response, and the
  results path's estimator analyses the pairs' window sums: :mod:`stats.geo.trimmed_match` (what
  ``GET /v1/experiments/{id}/results?method=trimmed_match`` runs), trim rate chosen from the data up to the bound the
  results of an experiment made from a matched-pair design use (:func:`api.results.geo_trimmed_match.trim_bound_of`:
  the design's own 10%; up to 2026-12-08 they used the estimator's default of 25%, still reported beside it),
  point estimate by :func:`stats.geo.trimmed_match_batch.trimmed_match_estimates` (equal row by row), and the
  one-sided test of iROAS = 0 at alpha: Student's t test of the studentized trimmed mean of the response
  deltas at the chosen trim, the test whose two-sided form is the result's ``p_value`` (rejects when the
  estimate is positive and that p-value is at most ``2 alpha``, i.e. the result's interval at confidence
  ``1 - 2 alpha`` lies above 0).

The holdback estimate moves exactly with the true iROAS (every spend delta is the treated geo's spend), so
the errors at the minimum detectable iROAS are the errors at any iROAS: one set of fits gives both the
realized RMSE and the detection rate.

A second, sharper check without the window-to-window noise (``resimulated``): the recommended design on its own
evaluation window under ``resimulations`` fresh random assignments (a stream the design never drew), analysed
as the design's simulation analyses them (trim at most 10%). Its RMSE is what the reported RMSE estimates, up
to Monte Carlo error; this is the check that caught the recommended design's figures being the minimum of
noisy estimates (:func:`api.geo_pairs.service.compute_pair_design` now ranks on one set of simulations and
reports from another).

Agreement, pooled over origins: ``sqrt(sum realized MSE / sum reported MSE)`` against 1 and the mean
detection rate against the design's power. Standard errors treat each origin (one held-out window and its
assignments) as one independent cluster: the window's own noise is what a design cannot average away.
Used by ``tests/stats/test_pair_design_calibration.py`` (CI size) and ``bench/calibrate_matched_pairs.py``.
"""

from __future__ import annotations

import csv
import math
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from api.experiments.schemas import DesignSource
from api.geo_design.schemas import HistoryPeriod
from api.geo_pairs.panel import RECOMMENDED_MIN_PAIRS, PairPanel
from api.geo_pairs.schemas import MatchedPairsRequest, PairDesign
from api.geo_pairs.service import compute_pair_design, pairing_of
from api.results.geo_trimmed_match import trim_bound_of
from stats.geo.pair_design import DESIGN_MAX_TRIM_RATE, GeoPairing, balanced_assignment, pair_deltas, random_flips
from stats.geo.trimmed_match import DEFAULT_MAX_TRIM_RATE, trimmed_mean_test_p_value, trimmed_per_side
from stats.geo.trimmed_match_batch import trimmed_match_estimates

FloatArray = NDArray[np.float64]

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "trimmed_match" / "example_data_for_design.csv"
WINDOW_DAYS = 28  # the design's evaluation window and the test: the design colab's four weeks
FIRST_ORIGIN = 2 * WINDOW_DAYS  # the API wants at least as many training days as evaluation days
ORIGIN_STEP = WINDOW_DAYS  # consecutive held-out windows do not overlap
RESIMULATION_SEED = 23  # issue 23; the design's own streams start with its seed
# The results path's bound for an experiment made from a matched-pair design (unless the experiment fixes a rate).
RESULTS_MAX_TRIM_RATE = trim_bound_of(DesignSource(job_id=uuid.UUID(int=0), kind="matched_pairs")).max_trim_rate


@dataclass(frozen=True)
class DesignPanel:
    """``example_data_for_design.csv`` as geos x days arrays (geos in the API's order: sorted by name)."""

    geos: tuple[str, ...]
    first_date: date
    response: FloatArray
    spend: FloatArray

    @property
    def days(self) -> int:
        return int(self.response.shape[1])


def load_design_panel() -> DesignPanel:
    with DATA.open() as handle:
        rows = list(csv.DictReader(handle))
    geos = tuple(sorted({r["geo"] for r in rows}))
    dates = sorted({r["date"][:10] for r in rows})
    geo_index = {g: i for i, g in enumerate(geos)}
    day_index = {d: i for i, d in enumerate(dates)}
    response = np.full((len(geos), len(dates)), np.nan)
    spend = np.full_like(response, np.nan)
    for r in rows:
        i, j = geo_index[r["geo"]], day_index[r["date"][:10]]
        response[i, j], spend[i, j] = float(r["response"]), float(r["cost"])
    assert not np.isnan(response).any() and not np.isnan(spend).any(), "the file has every geo on every date"
    return DesignPanel(geos, date.fromisoformat(dates[0]), response, spend)


def pair_panel(data: DesignPanel, end: int, pair_counts: tuple[int, ...]) -> PairPanel:
    """What :func:`api.geo_pairs.panel.load_pair_panel` reads for the pre-period of the first ``end`` days."""
    evaluation = slice(end - WINDOW_DAYS, end)
    training = slice(0, end - WINDOW_DAYS)

    def day(k: int) -> date:
        return data.first_date + timedelta(days=k)

    return PairPanel(
        dataset_id=uuid.UUID(int=0),
        dataset_version=1,
        geos=data.geos,
        training_response=data.response[:, training].sum(axis=1),
        training_spend=data.spend[:, training].sum(axis=1),
        evaluation_response=data.response[:, evaluation].sum(axis=1),
        evaluation_spend=data.spend[:, evaluation].sum(axis=1),
        latest_response=data.response[:, evaluation].sum(axis=1),
        pre_period=HistoryPeriod(start=day(0), end=day(end - 1)),
        evaluation_period=HistoryPeriod(start=day(end - WINDOW_DAYS), end=day(end - 1)),
        training_days=end - WINDOW_DAYS,
        evaluation_days=WINDOW_DAYS,
        spend_proxy="spend",
        excluded=(),
        given_pairs=None,
        pair_counts=pair_counts,
    )


@dataclass(frozen=True)
class OriginOutcome:
    """One origin: the recommended design's reported figures and what its held-out window gave.

    ``realized_rmse`` with ``realized_rmse_se`` (Monte Carlo over the assignments, delta method);
    ``detection_rate`` at the reported ``minimum_detectable_iroas``; ``default_bound_rmse`` and
    ``default_bound_detection_rate``: the same had the analysis chosen its trim up to the estimator's default of 25%
    (what the results of an experiment made from a design ran before 2026-12-08); ``resimulated_rmse`` and
    ``resimulated_detection_rate``: the design on its own evaluation window under fresh random assignments,
    analysed as the design's simulation analyses them (trim at most 10%): what the reported RMSE estimates.
    """

    end: date
    test_start: date
    pairs_kept: int
    reported_rmse: float
    reported_rmse_se: float
    minimum_detectable_iroas: float
    realized_rmse: float
    realized_rmse_se: float
    detection_rate: float
    default_bound_rmse: float
    default_bound_detection_rate: float
    resimulated_rmse: float
    resimulated_detection_rate: float
    assignments: int


@dataclass(frozen=True)
class Calibration:
    """Pooled agreement: ``rmse_ratio`` = sqrt(sum realized MSE / sum reported MSE) and the mean detection rate
    on the held-out windows, ``default_bound_*`` the same with the analysis trimming up to 25%, ``resimulated_*``
    on the evaluation windows under fresh assignments, each with its standard error; ``reported_rmse`` and
    ``realized_rmse``: root mean squares over the origins."""

    origins: tuple[OriginOutcome, ...]
    power: float
    reported_rmse: float
    realized_rmse: float
    realized_rmse_se: float
    rmse_ratio: float
    rmse_ratio_se: float
    detection_rate: float
    detection_rate_se: float
    default_bound_ratio: float
    default_bound_ratio_se: float
    default_bound_detection_rate: float
    default_bound_detection_rate_se: float
    resimulated_ratio: float
    resimulated_ratio_se: float
    resimulated_detection_rate: float
    resimulated_detection_rate_se: float


def _kept_sums(kept: GeoPairing, values: FloatArray) -> FloatArray:
    return np.column_stack([values[kept.first], values[kept.second]])


def _recommended(request: MatchedPairsRequest, panel: PairPanel) -> tuple[PairDesign, GeoPairing]:
    result = compute_pair_design(request, panel)
    assert result.recommended is not None
    design = next(d for d in result.designs if d.pairs_kept == result.recommended)
    kept = pairing_of(request, panel).kept(design.pairs_kept)
    for pair, first, second in zip(design.pairs, kept.first, kept.second, strict=True):
        assert {pair.treatment, pair.control} == {panel.geos[first], panel.geos[second]}, "the API's pairs"
    return design, kept


def _one_sided_tests(
    y: FloatArray, x: FloatArray, max_trim_rate: float, alpha: float
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Each row's trimmed match estimate and whether the one-sided test of iROAS = 0 at ``alpha`` rejects."""
    estimates, rates = trimmed_match_estimates(y, x, max_trim_rate)
    pairs = y.shape[1]
    detected = np.array(
        [
            estimate > 0.0 and trimmed_mean_test_p_value(row, trimmed_per_side(rate, pairs)) <= 2.0 * alpha
            for row, estimate, rate in zip(y, estimates, rates, strict=True)
        ],
        dtype=np.bool_,
    )
    return estimates, detected


def _outcome(
    data: DesignPanel,
    end: int,
    request: MatchedPairsRequest,
    assignments: int,
    resimulations: int,
    pair_counts: tuple[int, ...],
) -> OriginOutcome:
    panel = pair_panel(data, end, pair_counts)
    design, kept = _recommended(request, panel)
    at_budget = design.budgets[0]
    budget, mdi = at_budget.budget, at_budget.minimum_detectable_iroas
    evaluation = (_kept_sums(kept, panel.latest_response), _kept_sums(kept, panel.evaluation_response))
    eval_spend = _kept_sums(kept, panel.evaluation_spend)
    flips = np.array(
        [
            balanced_assignment(seed, evaluation[0], evaluation[1], eval_spend, 1.0 - request.alpha).treat_second
            for seed in range(assignments)
        ]
    )
    test = slice(end, end + WINDOW_DAYS)
    response = _kept_sums(kept, data.response[:, test].sum(axis=1))
    spend = _kept_sums(kept, data.spend[:, test].sum(axis=1))
    y, x = pair_deltas(response, spend, flips, request.test_type, budget, mdi)
    estimates, detected = _one_sided_tests(y, x, RESULTS_MAX_TRIM_RATE, request.alpha)
    wider, wider_detected = _one_sided_tests(y, x, DEFAULT_MAX_TRIM_RATE, request.alpha)
    # The same design on its own evaluation window under fresh assignments (a stream the design never drew): the
    # assignment-to-assignment RMSE its reported one estimates, without the window-to-window noise.
    fresh = random_flips(np.random.default_rng([RESIMULATION_SEED, end]), resimulations, kept.size)
    y, x = pair_deltas(evaluation[1], eval_spend, fresh, request.test_type, budget, mdi)
    resimulated, resimulated_detected = _one_sided_tests(y, x, DESIGN_MAX_TRIM_RATE, request.alpha)
    squared = (estimates - mdi) ** 2
    rmse = float(np.sqrt(squared.mean()))
    return OriginOutcome(
        end=data.first_date + timedelta(days=end - 1),
        test_start=data.first_date + timedelta(days=end),
        pairs_kept=design.pairs_kept,
        reported_rmse=at_budget.rmse,
        reported_rmse_se=at_budget.rmse_std,
        minimum_detectable_iroas=mdi,
        realized_rmse=rmse,
        realized_rmse_se=float(squared.std(ddof=1) / math.sqrt(assignments) / (2.0 * rmse)),
        detection_rate=float(np.mean(detected)),
        default_bound_rmse=float(np.sqrt(np.mean((wider - mdi) ** 2))),
        default_bound_detection_rate=float(np.mean(wider_detected)),
        resimulated_rmse=float(np.sqrt(np.mean((resimulated - mdi) ** 2))),
        resimulated_detection_rate=float(np.mean(resimulated_detected)),
        assignments=assignments,
    )


def calibrate(
    assignments: int,
    resimulations: int,
    budget: float = 300_000.0,
    seed: int = 2020,
    origins: int | None = None,
) -> Calibration:
    """Every origin (or the last ``origins``) of the module docstring, pooled."""
    data = load_design_panel()
    ends = list(range(FIRST_ORIGIN, data.days - WINDOW_DAYS + 1, ORIGIN_STEP))
    ends = ends[-origins:] if origins else ends
    pair_counts = tuple(range(len(data.geos) // 2, RECOMMENDED_MIN_PAIRS - 1, -1))
    request = MatchedPairsRequest(dataset_id=uuid.UUID(int=0), budgets=[budget], seed=seed)
    outcomes = tuple(_outcome(data, end, request, assignments, resimulations, pair_counts) for end in ends)
    return pooled(outcomes, request.power_target)


def _rmse_ratio(realized: FloatArray, reported: FloatArray) -> tuple[float, float]:
    """``sqrt(sum realized / sum reported)`` of mean squared errors, with its standard error over the clusters."""
    ratio = float(realized.sum() / reported.sum())
    # Var(sum a / sum b) ~ var(a - ratio b) / (n mean(b)^2); the square root halves the relative error.
    se = float(np.std(realized - ratio * reported, ddof=1) / math.sqrt(realized.size) / reported.mean())
    return math.sqrt(ratio), se / (2.0 * math.sqrt(ratio))


def _mean_and_se(values: FloatArray) -> tuple[float, float]:
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(values.size))


def pooled(outcomes: tuple[OriginOutcome, ...], power: float) -> Calibration:
    """Ratios of mean squared errors and mean detection rates, each origin one cluster."""
    realized = np.array([o.realized_rmse**2 for o in outcomes])
    reported = np.array([o.reported_rmse**2 for o in outcomes])
    resimulated = np.array([o.resimulated_rmse**2 for o in outcomes])
    ratio, ratio_se = _rmse_ratio(realized, reported)
    wider_ratio, wider_ratio_se = _rmse_ratio(np.array([o.default_bound_rmse**2 for o in outcomes]), reported)
    wider_detection, wider_detection_se = _mean_and_se(np.array([o.default_bound_detection_rate for o in outcomes]))
    resimulated_ratio, resimulated_ratio_se = _rmse_ratio(resimulated, reported)
    detection, detection_se = _mean_and_se(np.array([o.detection_rate for o in outcomes]))
    resimulated_detection, resimulated_detection_se = _mean_and_se(
        np.array([o.resimulated_detection_rate for o in outcomes])
    )
    realized_rmse = math.sqrt(float(realized.mean()))
    return Calibration(
        origins=outcomes,
        power=power,
        reported_rmse=math.sqrt(float(reported.mean())),
        realized_rmse=realized_rmse,
        realized_rmse_se=float(np.std(realized, ddof=1) / math.sqrt(realized.size) / (2.0 * realized_rmse)),
        rmse_ratio=ratio,
        rmse_ratio_se=ratio_se,
        detection_rate=detection,
        detection_rate_se=detection_se,
        default_bound_ratio=wider_ratio,
        default_bound_ratio_se=wider_ratio_se,
        default_bound_detection_rate=wider_detection,
        default_bound_detection_rate_se=wider_detection_se,
        resimulated_ratio=resimulated_ratio,
        resimulated_ratio_se=resimulated_ratio_se,
        resimulated_detection_rate=resimulated_detection,
        resimulated_detection_rate_se=resimulated_detection_se,
    )
