"""A design's backtest (``stats.geo_backtest``) on GeoLift's walkthrough history (``GeoLift_PreTest``).

Every rate is checked against the results' own conformal test (``stats.conformal.ConformalTest``, block
permutations, ``|sum of test-period residuals|``) run independently on each placebo window.
"""

from __future__ import annotations

import numpy as np
import pytest

from stats.conformal import ConformalTest, NullRefit
from stats.errors import InvalidProblem
from stats.geo_backtest import backtest_design, backtest_window_ends
from tests.stats.geolift_data import load_geolift_panel

ALPHA = 0.1
DURATION = 15


def design(markets: list[str]) -> tuple[np.ndarray, np.ndarray]:
    panel, geos = load_geolift_panel()
    panel = panel[:, :90]
    rows = [geos.index(m) for m in markets]
    return panel[rows], np.delete(panel, rows, axis=0).T


def rejects(treated: np.ndarray, donors: np.ndarray, end: int, effect: float) -> bool:
    """The results' test on the panel cut at ``end`` with ``effect`` injected into its last DURATION days."""
    y = treated.mean(axis=0)[:end].copy()
    post = np.zeros(end, dtype=bool)
    post[-DURATION:] = True
    y[post] *= 1.0 + effect
    test = ConformalTest(NullRefit(y, donors[:end], post), post, statistic="mean", n_permutations=1)
    return bool(test.p_values(np.zeros(1), "block")[0] <= ALPHA)


def test_windows_run_from_the_latest_back_to_three_test_lengths_of_history() -> None:
    ends = backtest_window_ends(90, DURATION, 20)
    assert ends[0] == 90
    assert ends[-1] == DURATION + 3 * DURATION
    assert len(ends) == 20 and ends == sorted(set(ends), reverse=True)


def test_false_positive_rate_is_the_share_of_placebo_windows_the_results_test_rejects() -> None:
    treated, donors = design(["chicago", "portland"])
    result = backtest_design(treated, donors, DURATION, effect=None, alpha=ALPHA)
    expected = np.mean([rejects(treated, donors, end, 0.0) for end in backtest_window_ends(90, DURATION, 20)])
    assert result.false_positive_rate == pytest.approx(expected)
    assert result.windows == 20
    assert result.detection_rate is None


def test_detection_rate_is_the_share_of_windows_where_the_injected_effect_is_detected() -> None:
    treated, donors = design(["chicago", "cincinnati", "houston", "portland"])
    result = backtest_design(treated, donors, DURATION, effect=0.05, alpha=ALPHA)
    expected = np.mean([rejects(treated, donors, end, 0.05) for end in backtest_window_ends(90, DURATION, 20)])
    assert result.detection_rate == pytest.approx(expected)
    assert result.effect == 0.05


def test_placebo_rmse_is_the_spread_of_lift_estimates_where_the_truth_is_zero() -> None:
    treated, donors = design(["chicago", "portland"])
    result = backtest_design(treated, donors, DURATION, effect=None, alpha=ALPHA)
    assert result.placebo_rmse is not None
    assert 0.0 < result.placebo_rmse < 0.1


def test_a_test_that_rejects_too_often_on_the_history_is_warned_about() -> None:
    treated, donors = design(["new york", "los angeles"])
    result = backtest_design(treated, donors, DURATION, effect=None, alpha=ALPHA)
    assert result.false_positive_excess_p_value < 0.05
    assert result.warnings and "placebo windows significant" in result.warnings[0]


def test_a_well_behaved_design_carries_no_warning() -> None:
    treated, donors = design(["chicago", "cincinnati", "houston", "portland"])
    result = backtest_design(treated, donors, DURATION, effect=None, alpha=ALPHA)
    assert result.false_positive_excess_p_value >= 0.05
    assert result.warnings == ()


def test_a_history_too_short_for_a_single_window_is_refused_naming_durations() -> None:
    treated, donors = design(["chicago", "portland"])
    with pytest.raises(InvalidProblem) as refused:
        backtest_design(treated[:, :40], donors[:40], DURATION, effect=None, alpha=ALPHA)
    assert refused.value.field == "durations"
