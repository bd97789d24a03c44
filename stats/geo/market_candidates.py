"""Candidate treatment-market sets for a geo-lift test: GeoLift's correlation sets and a swap search.

GeoLift's ``GeoLiftMarketSelection`` (Meta) proposes, for a treatment size ``n``, one set per market:
the market with its ``n - 1`` most correlated partners (Pearson correlation of the KPI series over
the history, excluded markets removed first), de-duplicated and kept only when it contains every
``include`` market (:func:`correlation_candidates`).  Those sets are alike by construction (similar
markets together), which is good for a synthetic control of the *others* only by accident.

:func:`swap_search` looks beyond them: from the best few correlation sets it moves one market at a
time, a swap of one member for a non-member, to the neighbour whose simulated test is most precise,
until no swap helps or the evaluation budget is spent.  Its score is the test's noise-to-signal ratio
``sd_k(block sum_k of u) / sum_{t test} y_t``: the spread of the ``d``-day block sums of the
no-effect residuals (the spread the conformal test compares the effect with) over the treated KPI in
the window, proportional to the smallest relative effect the test can see.  Sets it finds are
evaluated like any other candidate; they are reported with ``source = "swap_search"``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
from numpy.typing import NDArray

from stats.geo.conformal import LinearRefit
from stats.geo.power import block_sums

FloatArray = NDArray[np.float64]
Candidate = tuple[int, ...]

__all__ = ["Candidate", "correlation_candidates", "noise_to_signal", "partner_ranking", "swap_search"]


def partner_ranking(panel: FloatArray, eligible: Sequence[int]) -> dict[int, list[int]]:
    """For each eligible market (row), the other eligible markets by decreasing KPI correlation.

    Ties keep the panel's row order (R's ``arrange(-correlation)`` is stable too).  A market whose
    series is constant has no defined correlation and ranks its partners in row order.
    """
    rows = list(eligible)
    data = np.asarray(panel, dtype=np.float64)[rows]
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(data)
    corr = np.nan_to_num(np.atleast_2d(corr), nan=-np.inf)
    ranking: dict[int, list[int]] = {}
    for i, row in enumerate(rows):
        order = np.argsort(-corr[i], kind="stable")
        ranking[row] = [rows[j] for j in order if j != i]
    return ranking


def correlation_candidates(ranking: dict[int, list[int]], size: int, include: Iterable[int] = ()) -> list[Candidate]:
    """GeoLift's deterministic candidates of ``size`` markets: each market and its closest partners.

    Sets are sorted, de-duplicated in order of first appearance and kept when they hold every
    ``include`` market.
    """
    required = set(include)
    seen: set[Candidate] = set()
    out: list[Candidate] = []
    for market, partners in ranking.items():
        if size - 1 > len(partners):
            continue
        candidate = tuple(sorted([market, *partners[: size - 1]]))
        if candidate in seen or not required.issubset(candidate):
            continue
        seen.add(candidate)
        out.append(candidate)
    return out


def noise_to_signal(
    panel: FloatArray,
    candidate: Candidate,
    duration: int,
    *,
    fixed_effects: bool = True,
    ridge_lambda: float | None = None,
) -> float:
    """Spread of the ``duration``-day block sums of the no-effect residuals over the treated window KPI.

    The residuals are those of the estimator re-fitted on every day of the history with its last
    ``duration`` days as the test window, on the raw panel: the test of :mod:`stats.geo.power` at effect 0 before
    that test ran on the panel deflated by the donors' level. The score only proposes candidates; every candidate
    is then simulated, and ranked, with the deflated test (:func:`stats.geo.market_selection.evaluate_candidates`).
    """
    data = np.asarray(panel, dtype=np.float64)
    treated = data[list(candidate)].mean(axis=0)
    donors = np.delete(data, list(candidate), axis=0).T
    t = treated.size
    post = np.zeros(t, dtype=bool)
    post[t - duration :] = True
    residuals = LinearRefit(
        treated, donors, treated * post, fixed_effects=fixed_effects, ridge_lambda=ridge_lambda
    ).residuals(np.zeros(1))[0]
    signal = float(treated[post].sum())
    if not signal > 0.0:
        return float("inf")
    return float(np.std(block_sums(residuals, t - duration, duration)) / signal)


def swap_search(
    panel: FloatArray,
    seeds: Sequence[Candidate],
    eligible: Sequence[int],
    include: Iterable[int],
    duration: int,
    *,
    budget: int = 400,
    seed: int = 0,
    fixed_effects: bool = True,
    score: Callable[[Candidate], float] | None = None,
) -> list[Candidate]:
    """Best-improvement swap search from each seed set; returns the improved sets found (none if no swap helps).

    Each step scores every swap of a non-``include`` member for an eligible non-member (a seeded
    random sample of them when the neighbourhood exceeds what is left of ``budget``) and moves to the
    best one if it beats the current set.  ``budget`` caps the scores computed over all seeds.
    """
    fixed = set(include)
    pool = list(eligible)
    rng = np.random.default_rng(seed)
    cache: dict[Candidate, float] = {}

    def value(candidate: Candidate) -> float:
        if candidate not in cache:
            cache[candidate] = (
                score(candidate)
                if score is not None
                else noise_to_signal(panel, candidate, duration, fixed_effects=fixed_effects)
            )
        return cache[candidate]

    found: list[Candidate] = []
    per_seed = max(budget // max(len(seeds), 1), 1)
    for start in seeds:
        current = tuple(sorted(start))
        spent_before = len(cache)
        current_value = value(current)
        while len(cache) - spent_before < per_seed:
            members = [m for m in current if m not in fixed]
            outsiders = [m for m in pool if m not in current]
            moves = [(out, inn) for out in members for inn in outsiders]
            if not moves:
                break
            room = per_seed - (len(cache) - spent_before)
            if len(moves) > room:
                picks = rng.choice(len(moves), size=room, replace=False)
                moves = [moves[int(i)] for i in picks]
            best, best_value = current, current_value
            for out, inn in moves:
                neighbour = tuple(sorted([m for m in current if m != out] + [inn]))
                v = value(neighbour)
                if v < best_value:
                    best, best_value = neighbour, v
            if best == current:
                break
            current, current_value = best, best_value
        if current != tuple(sorted(start)) and current not in found:
            found.append(current)
    return found
