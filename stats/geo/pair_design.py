"""Randomized matched-pair geo designs: pair the geos, simulate the iROAS RMSE, randomize within pairs.

The design of Google's ``trimmed_match`` package (``trimmed_match/design``: ``TrimmedMatchGeoXDesign``,
``MatchedPairsRMSE``, ``geo_assignment``), after Chen, Longfils & Remy, "Trimmed Match Design for
randomized paired geo experiments" (Google, 2021, arXiv:2105.07060), analysed with the estimator of
Chen & Au (2022), :mod:`stats.geo.trimmed_match`. Written here from those definitions; the package's own
outputs on its example data are the tests' oracles.

Inputs are per-geo sums (sufficient statistics) over two windows of the history: the *training*
window (the design period less the evaluation window: the package's cross-validation) pairs the
geos; the *evaluation* window, as long as the planned test, is where the design is simulated.

Pairing (:func:`pair_geos`). With metrics ``m_k`` (response, spend) and weights ``w_k`` (the
package's default 1 and 0.01), each geo's rank score is ``sum_k w_k m_k(g) / sum_g m_k(g)`` over its
training sums. Geos sorted by rank score (descending; ties by name) are paired 1st-2nd, 3rd-4th, ...
With an odd count the geo with the largest response over both windows is left out first. A pair's
distance is ``sum_k w_k |m_k(a) - m_k(b)| / sum_g m_k(g)``; pairs are numbered ``1..n`` by distance,
*largest first*, so the design that drops the ``d`` least similar pairs keeps pairs ``d+1..n``.

RMSE by simulation (:func:`simulate_rmse`). For a kept pairing, a budget ``B`` and a true iROAS
``theta`` the evaluation window is replayed ``S`` times, each with a fresh coin flip in every pair
deciding which geo is treated. A geo's incremental spend is ``r s`` with ``s`` its evaluation spend
and ``r = 2 B / sum s`` (so the treated half spends ``B`` on average). By test type (the package's
``GeoXType``):

* ``holdback``: treated spend ``r s``, control spend 0;
* ``go-dark``: treated spend 0, control spend ``r s`` (its business-as-usual spend);
* ``heavy-up``: treated spend ``(1 + r) s``, control spend ``s``;

and the treated geo's response is ``max(0, y + theta * (spend change))``. The pair deltas (treated
minus control) go through the trimmed match point estimate with the trim rate chosen from the data
up to ``max_trim_rate`` (the package's design uses 0.10), and ``RMSE = sqrt(mean((est - theta)^2))``
with ``rmse_std`` its delta-method standard error ``sd((est - theta)^2) / (2 RMSE sqrt(S))``.

Two exact consequences. For holdback the spend delta is the treated geo's spend change, so adding
``theta x`` to the response deltas adds ``theta`` to the estimate: the RMSE is the same at every
``theta >= 0``. (For go-dark and heavy-up the treated response moves with the treated geo's own spend
change while the spend delta also carries the control's spend, so the RMSE depends on ``theta``; the
design reports it at ``theta = 0``, as the package's design colab does.) For holdback and go-dark the
spend deltas are proportional to ``B``, so at ``theta = 0`` the RMSE is exactly proportional to
``1 / B``.

Minimum detectable iROAS (:func:`minimum_detectable_iroas`, the package's
``CalculateMinDetectableIroas``): for the one-sided test of ``iROAS = 0`` at level ``alpha`` with
power ``power``, treating the estimate as normal with standard deviation RMSE,
``MDI = RMSE (z_{1-alpha} + z_{power})``. The budget that reaches a target iROAS ``t`` is
``B * MDI(B) / t`` (exact for holdback and go-dark; the design colab's scaling for heavy-up).

Assignment (:func:`balanced_assignment`, the package's ``generate_balanced_random_assignment``): a
coin flip per pair from numpy's PCG64 seeded with ``seed``, redrawn (at most 200 times) until two
balance checks pass: a binomial sign test (neither the positive nor the negative response deltas of
the latest window outnumber the ``0.5 + confidence / 2`` quantile of Binomial(n, 1/2)), and an A/A
test (the trimmed match interval at ``confidence``, with the package's normal quantile, on the
evaluation window's deltas covers 0; the spend deltas carry an extra half of each pair's spend, as the
package's do).
The same seed always gives the same assignment.

Vectorised: the simulations of a design run as one array, their trimmed match estimates all at once
(:mod:`stats.geo.trimmed_match_batch`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

from stats.errors import InvalidProblem
from stats.geo.trimmed_match import trimmed_match
from stats.geo.trimmed_match_batch import trimmed_match_estimates

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]

TestType = Literal["holdback", "go-dark", "heavy-up"]

__all__ = [
    "BalancedAssignment",
    "GeoPairing",
    "RmseSimulation",
    "TestType",
    "balanced_assignment",
    "minimum_detectable_iroas",
    "pair_deltas",
    "pair_geos",
    "random_flips",
    "rank_given_pairs",
    "simulate_rmse",
]

# The package's design defaults: the RMSE is evaluated with at most 10% trimming, an assignment is
# redrawn at most 200 times.
DESIGN_MAX_TRIM_RATE = 0.10
MAX_ASSIGNMENT_DRAWS = 200
# The package's A/A test adds an incremental spend of half of each pair's spend to the spend deltas
# (geo_assignment._INCREMENTAL_SPEND_RATIO_FOR_AA_TEST), so pairs of equal spend still give an iROAS.
_AA_SPEND_RATIO = 0.5


@dataclass(frozen=True)
class GeoPairing:
    """Pairs of geo indices, numbered ``1..n`` by distance, least similar first.

    ``first[i]``, ``second[i]``: the pair's geos (``first`` has the larger rank score);
    ``distance[i]``: the weighted normalized distance of their training metrics, non-increasing in
    ``i``; ``left_out``: the geo left unpaired for an odd count (``None`` when even).
    """

    first: IntArray
    second: IntArray
    distance: FloatArray
    left_out: int | None

    @property
    def size(self) -> int:
        return int(self.first.size)

    def kept(self, pairs: int) -> GeoPairing:
        """The design keeping the ``pairs`` most similar pairs (dropping the first ``size - pairs``)."""
        if not 1 <= pairs <= self.size:
            raise InvalidProblem("pair_counts", f"must lie in 1..{self.size}, got {pairs}")
        start = self.size - pairs
        return GeoPairing(self.first[start:], self.second[start:], self.distance[start:], self.left_out)


def _normalized_metrics(training: FloatArray, weights: FloatArray) -> FloatArray:
    totals = training.sum(axis=0)
    scaled = np.divide(training, totals, out=np.zeros_like(training), where=totals != 0.0)
    return np.asarray(scaled * weights, dtype=np.float64)


def _checked_training(training: npt.ArrayLike, weights: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    metrics = np.asarray(training, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if metrics.ndim != 2 or w.shape != (metrics.shape[1],):
        raise InvalidProblem("training", "must be a geos x metrics array with one weight per metric")
    if not np.all(np.isfinite(metrics)):
        raise InvalidProblem("training", "must be finite for every geo")
    if np.any(w < 0.0) or w.sum() <= 0.0:
        raise InvalidProblem("matching_weights", "must be non-negative and not all zero")
    return metrics, w


def _ranked(first: IntArray, second: IntArray, distance: FloatArray, names: Sequence[str]) -> tuple[IntArray, ...]:
    # Distance descending, ties by the first geo's name (the package sorts by (distance desc, geo1)).
    order = sorted(range(first.size), key=lambda i: (-distance[i], names[int(first[i])]))
    index = np.asarray(order, dtype=np.intp)
    return first[index], second[index], index


def pair_geos(
    training: npt.ArrayLike,
    weights: npt.ArrayLike,
    total_response: npt.ArrayLike,
    names: Sequence[str],
) -> GeoPairing:
    """Pair geos by the similarity of their training metrics (``TrimmedMatchGeoXDesign.create_geo_pairs``).

    ``training``: geos x metrics sums over the training window; ``weights``: one per metric;
    ``total_response``: each geo's response over the whole design period (the largest is left out
    for an odd count); ``names``: the geos' names, for ties. Needs at least 2 geos.
    """
    metrics, w = _checked_training(training, weights)
    total = np.asarray(total_response, dtype=np.float64)
    geos = np.arange(metrics.shape[0], dtype=np.intp)
    if len(names) != geos.size or total.shape != (geos.size,):
        raise InvalidProblem("training", "needs one name and one total response per geo")
    if geos.size < 2:
        raise InvalidProblem("training", f"needs at least 2 geos to pair, got {geos.size}")
    left_out: int | None = None
    if geos.size % 2:
        left_out = int(np.argmax(total))
        geos = np.delete(geos, left_out)
    scaled = np.zeros_like(metrics)
    scaled[geos] = _normalized_metrics(metrics[geos], w)
    score = scaled.sum(axis=1)
    order = np.asarray(sorted(geos.tolist(), key=lambda g: (-score[g], names[g])), dtype=np.intp)
    first, second = order[0::2], order[1::2]
    distance = np.abs(scaled[first] - scaled[second]).sum(axis=1)
    first, second, index = _ranked(first, second, distance, names)
    return GeoPairing(first, second, np.asarray(distance[index], dtype=np.float64), left_out)


def rank_given_pairs(
    training: npt.ArrayLike, weights: npt.ArrayLike, pairs: Sequence[tuple[int, int]], names: Sequence[str]
) -> GeoPairing:
    """Number given pairs as :func:`pair_geos` numbers its own (distance over the paired geos' totals).

    Raises :class:`~stats.errors.InvalidProblem` naming ``pairs[i]`` for a pair of a geo with itself
    or a geo in two pairs.
    """
    metrics, w = _checked_training(training, weights)
    seen: dict[int, int] = {}
    for i, (a, b) in enumerate(pairs):
        if a == b:
            raise InvalidProblem(f"pairs[{i}]", f"pairs {names[a]!r} with itself")
        for geo in (a, b):
            if geo in seen:
                raise InvalidProblem(f"pairs[{i}]", f"{names[geo]!r} is already in pairs[{seen[geo]}]")
            seen[geo] = i
    if not pairs:
        raise InvalidProblem("pairs", "must list at least one pair")
    geos = np.asarray(list(seen), dtype=np.intp)
    scaled = np.zeros_like(metrics)
    scaled[geos] = _normalized_metrics(metrics[geos], w)
    first = np.asarray([a for a, _ in pairs], dtype=np.intp)
    second = np.asarray([b for _, b in pairs], dtype=np.intp)
    distance = np.abs(scaled[first] - scaled[second]).sum(axis=1)
    first, second, index = _ranked(first, second, distance, names)
    return GeoPairing(first, second, np.asarray(distance[index], dtype=np.float64), None)


def random_flips(rng: np.random.Generator, simulations: int, pairs: int) -> BoolArray:
    """``simulations x pairs`` fair coin flips: ``True`` treats the pair's second geo."""
    return np.asarray(rng.random((simulations, pairs)) < 0.5, dtype=np.bool_)


def pair_deltas(
    response: npt.ArrayLike,
    spend: npt.ArrayLike,
    treat_second: npt.ArrayLike,
    test_type: TestType,
    budget: float,
    iroas: float = 0.0,
) -> tuple[FloatArray, FloatArray]:
    """Response and spend deltas (treated minus control) of every simulated assignment.

    ``response``, ``spend``: ``pairs x 2`` evaluation-window sums of each pair's (first, second) geo;
    ``treat_second``: ``simulations x pairs`` booleans. The potential outcomes of the module
    docstring, with ``r = 2 budget / sum(spend)``.
    """
    y = np.asarray(response, dtype=np.float64)
    s = np.asarray(spend, dtype=np.float64)
    flips = np.asarray(treat_second, dtype=np.bool_)
    total = float(s.sum())
    if not total > 0.0:
        raise InvalidProblem("spend", "the kept pairs have no spend in the evaluation window")
    ratio = 2.0 * budget / total
    second = flips.astype(np.intp)
    rows = np.arange(y.shape[0])
    y_t, y_c = y[rows, second], y[rows, 1 - second]
    s_t, s_c = s[rows, second], s[rows, 1 - second]
    if test_type == "holdback":
        spend_t, spend_c, change_t = ratio * s_t, np.zeros_like(s_c), ratio * s_t
    elif test_type == "go-dark":
        spend_t, spend_c, change_t = np.zeros_like(s_t), ratio * s_c, -ratio * s_t
    elif test_type == "heavy-up":
        spend_t, spend_c, change_t = (1.0 + ratio) * s_t, s_c, ratio * s_t
    else:
        raise InvalidProblem("test_type", f"unknown test type {test_type!r}")
    treated = np.maximum(0.0, y_t + iroas * change_t)
    return np.asarray(treated - y_c, dtype=np.float64), np.asarray(spend_t - spend_c, dtype=np.float64)


@dataclass(frozen=True)
class RmseSimulation:
    """The iROAS estimate over the simulated assignments of one design and budget.

    ``rmse`` about the true iROAS with its delta-method standard error ``rmse_std``; ``bias`` (mean
    error), ``std`` (standard deviation of the estimates), ``trim_rate`` (mean trim rate chosen);
    ``estimates``: every simulation's estimate (read-only).
    """

    rmse: float
    rmse_std: float
    bias: float
    std: float
    trim_rate: float
    estimates: FloatArray


def simulate_rmse(
    response: npt.ArrayLike,
    spend: npt.ArrayLike,
    treat_second: npt.ArrayLike,
    test_type: TestType,
    budget: float,
    iroas: float = 0.0,
    max_trim_rate: float = DESIGN_MAX_TRIM_RATE,
) -> RmseSimulation:
    """RMSE of the trimmed match iROAS over the assignments ``treat_second`` (``MatchedPairsRMSE.report``).

    ``response``, ``spend``: ``pairs x 2`` evaluation sums of the kept pairs' (first, second) geos.
    """
    if not (budget > 0.0 and math.isfinite(budget)):
        raise InvalidProblem("budget", "must be a positive finite amount")
    y, x = pair_deltas(response, spend, treat_second, test_type, budget, iroas)
    estimates, rates = trimmed_match_estimates(y, x, max_trim_rate)
    errors = estimates - iroas
    squared = errors**2
    rmse = float(np.sqrt(squared.mean()))
    simulations = errors.size
    rmse_std = (
        float(squared.std(ddof=1) / math.sqrt(simulations) / (2.0 * rmse)) if simulations > 1 and rmse > 0 else 0.0
    )
    estimates.flags.writeable = False
    return RmseSimulation(
        rmse=rmse,
        rmse_std=rmse_std,
        bias=float(errors.mean()),
        std=float(estimates.std(ddof=1)) if simulations > 1 else 0.0,
        trim_rate=float(rates.mean()),
        estimates=estimates,
    )


def minimum_detectable_iroas(rmse: float, alpha: float, power: float) -> float:
    """``rmse (z_{1-alpha} + z_{power})``: the iROAS the one-sided test of 0 detects with ``power``."""
    if not (0.0 < alpha < 1.0 and 0.0 < power < 1.0):
        raise InvalidProblem("alpha", "alpha and power must lie strictly between 0 and 1")
    return float(rmse * (stats.norm.ppf(1.0 - alpha) + stats.norm.ppf(power)))


@dataclass(frozen=True)
class BalancedAssignment:
    """Which geo of each pair is treated (``treat_second[i]``: the pair's second) and how it was drawn.

    ``balanced``: the draw passed both checks (else no draw of ``MAX_ASSIGNMENT_DRAWS`` did and this is
    the first one); ``draws``: how many were drawn; ``sign_test_positives``: pairs whose treated geo had
    the larger latest-window response; ``aa_interval``: the A/A interval (``None`` when it has no solution).
    """

    treat_second: BoolArray
    balanced: bool
    draws: int
    sign_test_positives: int
    aa_interval: tuple[float, float] | None


def _sign_test_passes(delta: FloatArray, confidence: float) -> bool:
    upper = stats.binom.ppf(0.5 + 0.5 * confidence, delta.size, 0.5)
    return bool(np.sum(delta > 0) <= upper and np.sum(delta < 0) <= upper)


def _signed(values: FloatArray, flips: BoolArray) -> FloatArray:
    # treated minus control: second - first when the second geo is treated.
    difference = values[:, 1] - values[:, 0]
    return np.asarray(np.where(flips, difference, -difference), dtype=np.float64)


def _aa_interval(
    response: FloatArray, spend: FloatArray, flips: BoolArray, confidence: float
) -> tuple[float, float] | None:
    try:
        # The package's A/A check at its normal quantile, so a seed draws the package's (and earlier
        # designs') assignment; the t quantile of the post-analysis would accept slightly more draws.
        fit = trimmed_match(
            _signed(response, flips),
            _signed(spend, flips) + _AA_SPEND_RATIO * spend.sum(axis=1),
            confidence,
            quantile="normal",
        )
    except InvalidProblem:
        return None
    return fit.ci_low, fit.ci_high


def balanced_assignment(
    seed: int,
    sign_response: npt.ArrayLike,
    eval_response: npt.ArrayLike,
    eval_spend: npt.ArrayLike,
    confidence: float,
) -> BalancedAssignment:
    """The first coin flips from PCG64(``seed``) that pass the sign test and the A/A test (module docstring).

    ``sign_response``: ``pairs x 2`` response sums over the latest window of the test's length;
    ``eval_response``, ``eval_spend``: over the evaluation window. When none of 200 draws passes,
    the first draw, marked unbalanced.
    """
    sign = np.asarray(sign_response, dtype=np.float64)
    response = np.asarray(eval_response, dtype=np.float64)
    spend = np.asarray(eval_spend, dtype=np.float64)
    rng = np.random.default_rng(seed)
    first: BalancedAssignment | None = None
    for draw in range(1, MAX_ASSIGNMENT_DRAWS + 1):
        flips = random_flips(rng, 1, sign.shape[0])[0]
        delta = _signed(sign, flips)
        passes_sign = _sign_test_passes(delta, confidence)
        interval = _aa_interval(response, spend, flips, confidence) if passes_sign or first is None else None
        balanced = passes_sign and interval is not None and interval[0] < 0.0 < interval[1]
        outcome = BalancedAssignment(flips, balanced, draw, int(np.sum(delta > 0)), interval)
        if balanced:
            return outcome
        first = first or outcome
    assert first is not None
    return BalancedAssignment(
        first.treat_second, False, MAX_ASSIGNMENT_DRAWS, first.sign_test_positives, first.aa_interval
    )
