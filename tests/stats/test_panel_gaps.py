"""stats.geo.panel_gaps: each missing-data policy on small hand-made panels (expected values by hand or numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from stats.errors import InvalidProblem
from stats.geo.panel_gaps import complete_panel, protected_gaps

NAN = np.nan
# Rows: a treated market, two controls; columns: 4 pre-period dates then 2 test dates.
PANEL = np.array(
    [
        [10.0, NAN, 12.0, 13.0, 20.0, 21.0],
        [5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
        [1.0, 2.0, NAN, 4.0, NAN, 6.0],
    ]
)
PROTECTED = np.array([True, False, False])
PRE = np.array([True, True, True, True, False, False])
DAYS = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 6.0])  # the last test date is two days after the one before


def test_drop_market_leaves_out_gappy_controls_and_the_pre_dates_a_treated_market_lacks() -> None:
    done = complete_panel(PANEL, PROTECTED, PRE, DAYS, "drop_market")
    assert done.rows.tolist() == [0, 1] and done.dropped_rows == [2]
    assert done.columns.tolist() == [0, 2, 3, 4, 5] and done.dropped_columns == [1]
    np.testing.assert_array_equal(done.panel, PANEL[np.ix_([0, 1], [0, 2, 3, 4, 5])])
    assert done.filled == 0


def test_interpolate_is_linear_in_time_between_the_nearest_reported_dates() -> None:
    done = complete_panel(PANEL, PROTECTED, PRE, DAYS, "interpolate")
    assert done.filled == 3 and done.filled_rows == [0, 2]
    assert done.panel[0, 1] == pytest.approx(11.0)
    assert done.panel[2, 2] == pytest.approx(3.0)
    assert done.panel[2, 4] == pytest.approx(4.0 + (6.0 - 4.0) * (4.0 - 3.0) / (6.0 - 3.0))


def test_interpolate_holds_the_nearest_value_beyond_either_end() -> None:
    panel = np.array([[NAN, 2.0, 3.0, NAN], [1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0]])
    done = complete_panel(panel, np.array([False, True, False]), np.ones(4, bool), np.arange(4.0), "interpolate")
    assert done.panel[0].tolist() == [2.0, 2.0, 3.0, 3.0]


def test_interpolate_leaves_out_a_control_with_no_value_at_all() -> None:
    panel = np.array([[1.0, 2.0], [NAN, NAN], [3.0, 4.0]])
    done = complete_panel(panel, np.array([True, False, False]), np.array([True, False]), np.arange(2.0), "interpolate")
    assert done.dropped_rows == [1] and done.rows.tolist() == [0, 2]


def test_zero_fills_every_gap_with_zero_even_a_treated_test_date() -> None:
    panel = PANEL.copy()
    panel[0, 5] = NAN
    done = complete_panel(panel, PROTECTED, PRE, DAYS, "zero")
    np.testing.assert_array_equal(done.panel, np.nan_to_num(panel, nan=0.0))
    assert done.filled == 4


def test_a_protected_gap_outside_the_pre_period_is_listed_and_refused_unless_zero() -> None:
    panel = PANEL.copy()
    panel[0, 5] = NAN
    assert protected_gaps(panel, PROTECTED, PRE) == [(0, [5])]
    for policy in ("drop_market", "interpolate"):
        with pytest.raises(InvalidProblem):
            complete_panel(panel, PROTECTED, PRE, DAYS, policy)


def test_an_unknown_policy_is_refused_naming_missing() -> None:
    with pytest.raises(InvalidProblem) as refused:
        complete_panel(PANEL, PROTECTED, PRE, DAYS, "mean")  # type: ignore[arg-type]
    assert refused.value.field == "missing"


def test_a_complete_panel_is_returned_unchanged() -> None:
    panel = np.nan_to_num(PANEL, nan=1.0)
    done = complete_panel(panel, PROTECTED, PRE, DAYS, "drop_market")
    np.testing.assert_array_equal(done.panel, panel)
    assert done.dropped_rows == [] and done.dropped_columns == [] and done.filled == 0
