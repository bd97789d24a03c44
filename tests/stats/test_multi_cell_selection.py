"""Multi-cell market selection on the pre-period of GeoLift's walkthrough panel (40 markets x 90 days):
partitions by systematic sampling as GeoLift's MultiCellMarketSelection, every cell's candidates and controls
inside its partition."""

from __future__ import annotations

import numpy as np
import pytest

from simulations.geolift_data import load_geolift_panel
from stats.errors import InvalidProblem
from stats.geo.market_selection import SelectionSpec, evaluate_candidates
from stats.geo.multi_cell_selection import (
    check_cell_selection,
    plan_cell_candidates,
    rank_cells,
    systematic_partitions,
)

SPEC = SelectionSpec(treatment_sizes=(2,), durations=(15,), effects=(0.0, 0.05, 0.1, 0.2), search_budget=20)


def pretest_panel() -> np.ndarray:
    panel, _ = load_geolift_panel()
    return panel[:, :90]  # the 90 days before the walkthrough's test


def test_partitions_deal_the_markets_out_by_total_kpi_and_cover_every_eligible_one() -> None:
    panel = pretest_panel()
    parts = systematic_partitions(panel, exclude=[0, 5], cells=3)
    flat = [r for part in parts for r in part]
    assert sorted(flat) == [r for r in range(40) if r not in (0, 5)]
    assert [len(p) for p in parts] == [13, 13, 12]
    # Dealt in turn: the biggest market of each partition is among the k biggest overall.
    totals = panel.sum(axis=1)
    biggest = sorted((r for r in range(40) if r not in (0, 5)), key=lambda r: -totals[r])[:3]
    assert sorted(max(p, key=lambda r: totals[r]) for p in parts) == sorted(biggest)


def test_each_cells_candidates_and_controls_lie_in_its_own_partition() -> None:
    panel = pretest_panel()
    parts = systematic_partitions(panel, exclude=[], cells=2)
    plans = plan_cell_candidates(panel, SPEC, 2)
    assert {p.cell for p in plans} == {0, 1}
    for plan in plans:
        assert plan.cell is not None and plan.donors is not None
        partition = set(parts[plan.cell])
        assert set(plan.markets) <= partition
        assert set(plan.donors) == partition - set(plan.markets)


def test_ranked_designs_of_different_cells_share_no_market() -> None:
    panel = pretest_panel()
    plans = plan_cell_candidates(panel, SPEC, 2)
    evaluations = evaluate_candidates(panel, plans[:6] + [p for p in plans if p.cell == 1][:6], SPEC)
    first, second = rank_cells(evaluations, SPEC, 2)
    assert first.designs and second.designs
    assert all(d.evaluation.cell == 0 for d in first.designs)
    assert all(d.evaluation.cell == 1 for d in second.designs)
    cell_one = {m for d in first.designs for m in d.evaluation.markets}
    cell_two = {m for d in second.designs for m in d.evaluation.markets}
    assert not cell_one & cell_two


def test_a_treatment_size_too_big_for_a_partition_is_refused() -> None:
    with pytest.raises(InvalidProblem) as err:
        check_cell_selection(pretest_panel(), SelectionSpec((12,), (15,), (0.1,)), 4)  # partitions of 10 markets
    assert err.value.field == "treatment_sizes"


def test_include_cannot_be_combined_with_cells() -> None:
    with pytest.raises(InvalidProblem) as err:
        check_cell_selection(pretest_panel(), SelectionSpec((2,), (15,), (0.1,), include=(3,)), 2)
    assert err.value.field == "include"
