"""Market selection for a multi-cell geo test: ranked treatment sets for ``k`` cells, disjoint by construction.

GeoLift's ``MultiCellMarketSelection`` (``sampling_method = "systematic"``): the eligible markets are ordered
by their total KPI over the history and dealt out in turn into ``k`` partitions (market ``i`` of that order
goes to partition ``i mod k``), so every partition spans big and small markets alike; then each partition
runs the single-cell selection (:mod:`stats.geo.market_selection`) on its own markets alone.  A cell's
candidates therefore come from its partition only -- no market can be in two cells -- and each candidate's
synthetic control is fitted on the other markets of its partition, none of which any cell treats.  The
test itself will have more controls (the untreated markets of every partition), so the simulated power is,
if anything, understated.  Design ``r`` of a multi-cell selection is the ``r``-th ranked candidate of every
cell, as GeoLift pairs its cells' candidates by rank.  Markets in ``exclude`` join no partition.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from stats.errors import InvalidProblem
from stats.geo.market_selection import (
    CandidatePlan,
    DesignEvaluation,
    RankedSelection,
    SelectionSpec,
    check_selection,
    plan_candidates,
    rank_designs,
)

FloatArray = NDArray[np.float64]

__all__ = ["check_cell_selection", "plan_cell_candidates", "rank_cells", "systematic_partitions"]


def systematic_partitions(panel: FloatArray, exclude: Sequence[int], cells: int) -> list[tuple[int, ...]]:
    """Rows of each of ``cells`` partitions: the non-excluded rows by total KPI (largest first, ties by row),
    dealt out in turn.

    >>> systematic_partitions(np.array([[1.0], [5.0], [3.0], [4.0], [2.0]]), [], 2)
    [(0, 1, 2), (3, 4)]
    """
    data = np.asarray(panel, dtype=np.float64)
    excluded = set(exclude)
    eligible = [i for i in range(data.shape[0]) if i not in excluded]
    totals = data[eligible].sum(axis=1)
    order = [eligible[j] for j in np.lexsort((np.arange(len(eligible)), -totals))]
    return [tuple(sorted(order[c::cells])) for c in range(cells)]


def _cell_spec(spec: SelectionSpec) -> SelectionSpec:
    return replace(spec, include=(), exclude=())


def check_cell_selection(panel: FloatArray, spec: SelectionSpec, cells: int) -> None:
    """Refuse (``InvalidProblem`` naming the field) a multi-cell selection some partition cannot answer."""
    if cells < 2:
        raise InvalidProblem("cells", "a multi-cell selection needs at least 2 cells")
    if spec.include:
        raise InvalidProblem("include", "cannot be combined with `cells`: each cell's markets come from its partition")
    data = np.asarray(panel, dtype=np.float64)
    for rows in systematic_partitions(data, spec.exclude, cells):
        check_selection(_cell_spec(spec), len(rows), data.shape[1])


def plan_cell_candidates(panel: FloatArray, spec: SelectionSpec, cells: int) -> list[CandidatePlan]:
    """Every cell's candidates (rows of the whole panel) with its partition's other markets as donors."""
    check_cell_selection(panel, spec, cells)
    data = np.asarray(panel, dtype=np.float64)
    plans: list[CandidatePlan] = []
    for cell, rows in enumerate(systematic_partitions(data, spec.exclude, cells)):
        for plan in plan_candidates(data[list(rows)], _cell_spec(spec)):
            markets = tuple(sorted(rows[i] for i in plan.markets))
            donors = tuple(r for r in rows if r not in markets)
            plans.append(CandidatePlan(markets, plan.source, donors=donors, cell=cell))
    return plans


def rank_cells(evaluations: Sequence[DesignEvaluation], spec: SelectionSpec, cells: int) -> list[RankedSelection]:
    """Each cell's designs ranked on their own (:func:`stats.geo.market_selection.rank_designs`)."""
    return [rank_designs([e for e in evaluations if e.cell == cell], spec) for cell in range(cells)]
