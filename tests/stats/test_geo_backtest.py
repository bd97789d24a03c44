"""The backtest (``stats.geo.backtest``) on GeoLift's walkthrough history (``GeoLift_PreTest``).

Every rate is checked against each method's own scalar analysis run independently on each placebo window: the
results' conformal test (``stats.geo.conformal.ConformalTest``, block permutations, ``|sum of test-period residuals|``
on the panel deflated by the donors' level), ``stats.geo.tbr.estimate_tbr`` and
``stats.geo.trimmed_match.trimmed_match``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom, norm

from simulations.geolift_data import load_geolift_panel
from stats.errors import InvalidProblem
from stats.geo.backtest import (
    Backtest,
    backtest,
    backtest_design,
    backtest_window_ends,
    best_backtest,
    interval_mde,
    tbr_window_test,
    trimmed_match_window_test,
)
from stats.geo.conformal import ConformalTest, NullRefit, donor_level
from stats.geo.tbr import estimate_tbr
from stats.geo.trimmed_match import trimmed_match

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
    model = NullRefit(y, donors[:end], post, level=donor_level(donors[:end]))
    test = ConformalTest(model, post, statistic="mean", n_permutations=1)
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


# --- the same backtest for a result's method (TBR, trimmed match) and the comparison of methods ------


def tbr_rejects(treated: np.ndarray, donors: np.ndarray, end: int, effect: float, interval: str) -> tuple[bool, float]:
    """estimate_tbr (the scalar API the results call) on the window ending at ``end``: (rejects, relative lift)."""
    y = treated.sum(axis=0)[:end].copy()
    y[end - DURATION :] *= 1.0 + effect
    x = donors[:end].sum(axis=1)
    result = estimate_tbr(y, x, slice(0, end - DURATION), slice(end - DURATION, end), 1 - ALPHA, method=interval)  # type: ignore[arg-type]
    assert result.p_value is not None and result.relative.estimate is not None
    return result.p_value <= ALPHA, result.relative.estimate


@pytest.mark.parametrize("interval", ["conformal", "kerman"])
def test_tbr_backtest_runs_estimate_tbr_on_each_placebo_window(interval: str) -> None:
    treated, donors = design(["chicago", "portland"])
    analysis = tbr_window_test(treated.sum(axis=0), donors.sum(axis=1), DURATION, ALPHA, interval)  # type: ignore[arg-type]
    result = backtest(90, DURATION, analysis, method="tbr", effect=0.05, alpha=ALPHA)
    expected = [tbr_rejects(treated, donors, w.end, 0.0, interval) for w in result.placebo_windows]
    detected = [tbr_rejects(treated, donors, w.end, 0.05, interval)[0] for w in result.placebo_windows]
    assert [w.significant for w in result.placebo_windows] == [e[0] for e in expected]
    assert [w.relative_lift for w in result.placebo_windows] == pytest.approx([e[1] for e in expected], rel=1e-9)
    assert [w.detected for w in result.placebo_windows] == detected
    assert result.false_positive_rate == pytest.approx(np.mean([e[0] for e in expected]))


def test_trimmed_match_backtest_tests_the_pairs_window_sums_against_the_experiments_spend() -> None:
    panel = load_geolift_panel()[0][:, :90]
    t, c = panel[0:16:2], panel[1:16:2]  # 8 pairs of neighbouring cities
    spend = np.linspace(800.0, 1200.0, 8)
    result = backtest(
        90,
        DURATION,
        trimmed_match_window_test(t, c, spend, DURATION, ALPHA, 0.125),
        method="trimmed_match",
        effect=0.1,
        alpha=ALPHA,
    )
    for window in result.placebo_windows:
        y = t[:, window.start : window.end].sum(axis=1) - c[:, window.start : window.end].sum(axis=1)
        oracle = trimmed_match(y, spend, 1 - ALPHA, trim_rate=0.125)
        assert window.significant == (oracle.ci_low > 0 or oracle.ci_high < 0)
        treated_total = t[:, window.start : window.end].sum()
        incremental = oracle.incremental_response.estimate
        assert incremental is not None
        assert window.relative_lift == pytest.approx(incremental / (treated_total - incremental))


def test_placebo_windows_are_listed_with_their_days_and_verdicts() -> None:
    treated, donors = design(["chicago", "portland"])
    result = backtest_design(treated, donors, DURATION, effect=None, alpha=ALPHA)
    assert [w.end for w in result.placebo_windows] == backtest_window_ends(90, DURATION, 20)
    assert all(w.end - w.start == DURATION and w.detected is None for w in result.placebo_windows)
    assert result.false_positive_rate == pytest.approx(np.mean([w.significant for w in result.placebo_windows]))


def _summary(method: str, false_positives: int, detection: float, rmse: float) -> Backtest:
    excess = float(binom.sf(false_positives - 1, 20, 0.1)) if false_positives else 1.0
    return Backtest(method, 0.1, 20, false_positives / 20, excess, rmse, 0.05, detection, (), ())


def test_the_best_method_holds_its_level_first_then_detects_most_then_errs_least() -> None:
    liberal = _summary("tbr", 7, 0.95, 0.01)  # 7 of 20 at alpha 0.1: p = 0.012, too many
    powerful = _summary("synthetic_control", 2, 0.80, 0.03)
    precise = _summary("augmented_synthetic_control", 1, 0.80, 0.02)
    assert liberal.false_positive_excess and not powerful.false_positive_excess
    best = best_backtest([liberal, powerful, precise])
    assert best is not None and best.method == "augmented_synthetic_control"
    assert best_backtest([liberal, _summary("synthetic_control", 2, 0.9, 0.05), precise]).method == "synthetic_control"  # type: ignore[union-attr]


def test_interval_mde_is_the_normal_minimum_detectable_effect_of_the_intervals_standard_error() -> None:
    z, z_power = norm.ppf(0.95), norm.ppf(0.8)
    expected = (0.31 - -0.07) / 2 / z * (z + z_power)
    assert interval_mde(-0.07, 0.31, 0.9) == pytest.approx(expected, rel=1e-12)


def test_an_effect_of_the_interval_mde_is_detected_with_the_stated_power_in_simulation() -> None:
    rng = np.random.default_rng(7)
    se, level = 0.04, 0.9
    z = norm.ppf(0.5 + level / 2)
    mde = interval_mde(-z * se, z * se, level)
    assert mde is not None
    estimates = rng.normal(mde, se, size=200_000)
    detected = np.mean(np.abs(estimates) / se > z)
    assert detected == pytest.approx(0.8, abs=0.005)


@pytest.mark.parametrize("ends", [(0.1, 0.1), (0.2, 0.1), (-np.inf, 0.3), (np.nan, 0.3)])
def test_interval_mde_is_none_for_an_empty_or_unbounded_interval(ends: tuple[float, float]) -> None:
    assert interval_mde(*ends, 0.9) is None
