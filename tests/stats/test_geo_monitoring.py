"""Daily looks at geo tests: the monitored test holds its level where daily fixed-horizon p-values do not.

Simulated null tests (simulations/geo_simulation.py: 21 markets, one treated near the median, 90 pre-days,
AR(1) noise with coefficient 0.3 on top of a shared trend and weekly seasonality), each read on every day of
a 15-day test by the synthetic control's and TBR's conformal tests.  Seeded and CI-sized (150 tests); the
full runs (2,000 tests per setting) are bench/bench_geo_monitoring.py's, with figures in the README.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from simulations.geo_simulation import PanelModel
from stats.errors import InvalidProblem
from stats.geo.conformal import conformal_inference
from stats.geo.monitoring import (
    daily_boundaries,
    monitor_looks,
    scm_look_p_values,
    scm_repeated_interval,
    tbr_look_p_values,
    tbr_repeated_interval,
)
from stats.geo.tbr import estimate_tbr

ALPHA = 0.05
PRE_DAYS = 90
TEST_DAYS = 15
TESTS = 150


@cache
def simulated_paths(effect: float) -> dict[str, list[list[float]]]:
    """Each method's daily p-value paths over ``TESTS`` seeded tests with a multiplicative ``effect``."""
    model = PanelModel(n_markets=21, n_treated=1, noise_ar=0.3)
    rng = np.random.default_rng(7)
    paths: dict[str, list[list[float]]] = {"synthetic_control": [], "tbr": []}
    for i in range(TESTS):
        markets = model.markets(5_000 + i)
        panel = model.panel(markets, PRE_DAYS + TEST_DAYS, rng)
        panel[markets.treated, PRE_DAYS:] *= 1.0 + effect
        treated = panel[markets.treated].mean(axis=0)
        paths["synthetic_control"].append(scm_look_p_values(treated, panel[markets.donors].T, PRE_DAYS))
        paths["tbr"].append(tbr_look_p_values(treated, panel[markets.donors].sum(axis=0), PRE_DAYS))
    return paths


def rejection_rate(paths: list[list[float]]) -> float:
    return float(np.mean([monitor_looks(p, TEST_DAYS, alpha=ALPHA).decision_day is not None for p in paths]))


@pytest.mark.parametrize("method", ["synthetic_control", "tbr"])
def test_a_look_every_day_keeps_false_positives_within_alpha_plus_one_point(method: str) -> None:
    rate = rejection_rate(simulated_paths(0.0)[method])
    se = np.sqrt(ALPHA * (1.0 - ALPHA) / TESTS)
    assert rate <= ALPHA + 0.01 + 2.0 * se


@pytest.mark.parametrize("method", ["synthetic_control", "tbr"])
def test_daily_fixed_horizon_p_values_on_the_same_tests_inflate_false_positives(method: str) -> None:
    # What the monitoring prevents: GeoLift-style daily reads of the fixed-horizon p-value.
    peeking = float(np.mean([min(p) <= ALPHA for p in simulated_paths(0.0)[method]]))
    assert peeking >= 2.0 * max(rejection_rate(simulated_paths(0.0)[method]), ALPHA)


@pytest.mark.parametrize("method", ["synthetic_control", "tbr"])
def test_with_an_effect_the_monitored_test_keeps_most_of_the_fixed_horizon_power(method: str) -> None:
    paths = simulated_paths(0.06)[method]
    fixed = float(np.mean([p[-1] <= ALPHA for p in paths]))
    monitored = rejection_rate(paths)
    assert fixed >= 0.3  # an effect worth detecting, so the comparison means something
    assert monitored >= fixed - 0.15


def test_the_first_days_of_a_test_cannot_stop_it() -> None:
    # O'Brien-Fleming-type spending: day 1 of 15 is held to about 1e-20, far below 1 / (T0 + 1).
    levels = daily_boundaries(TEST_DAYS, TEST_DAYS, alpha=ALPHA)
    assert levels[0] < 1.0 / (PRE_DAYS + 1)
    assert levels == tuple(sorted(levels))
    assert levels[-1] < ALPHA


def test_looks_past_the_planned_end_spend_nothing_more() -> None:
    levels = daily_boundaries(5, 7, alpha=ALPHA)
    assert levels[5:] == (0.0, 0.0)
    reading = monitor_looks([0.5, 0.5, 0.5, 0.5, 0.5, 1e-9, 1e-9], 5, alpha=ALPHA)
    assert reading.decision == "stop: planned end"
    assert reading.decision_day is None


def test_the_decision_is_the_first_look_that_crosses_its_boundary() -> None:
    levels = daily_boundaries(10, 6, alpha=ALPHA)
    p_values = [0.5, 0.4, 0.3, levels[3] * 0.5, 0.5, 0.5]
    reading = monitor_looks(p_values, 10, alpha=ALPHA)
    assert reading.decision == "stop: effect detected"
    assert reading.decision_day == 4
    assert [look.crossed for look in reading.looks] == [False, False, False, True, False, False]
    assert monitor_looks([0.5] * 6, 10, alpha=ALPHA).decision == "continue"


def test_the_repeated_interval_is_wider_than_the_fixed_horizon_interval_and_holds_the_effect() -> None:
    model = PanelModel(n_markets=21, n_treated=1, noise_ar=0.3)
    markets = model.markets(11)
    panel = model.panel(markets, PRE_DAYS + TEST_DAYS, np.random.default_rng(3))
    panel[markets.treated, PRE_DAYS:] *= 1.2
    treated = panel[markets.treated].mean(axis=0)
    donors = panel[markets.donors].T
    scale = float(np.std(treated[:PRE_DAYS]))
    level = daily_boundaries(TEST_DAYS, TEST_DAYS, alpha=ALPHA)[-1]
    low, high = scm_repeated_interval(treated, donors, PRE_DAYS, level, estimate=0.2 * treated.mean(), scale=scale)
    fixed_low, fixed_high = scm_repeated_interval(
        treated, donors, PRE_DAYS, ALPHA, estimate=0.2 * treated.mean(), scale=scale
    )
    assert low is not None and high is not None and fixed_low is not None and fixed_high is not None
    assert low <= fixed_low < fixed_high <= high
    effect = float(np.mean(treated[PRE_DAYS:] - treated[PRE_DAYS:] / 1.2))
    assert low <= effect <= high
    control = panel[markets.donors].sum(axis=0)
    tbr_low, tbr_high = tbr_repeated_interval(treated, control, PRE_DAYS, level)
    tbr_fixed_low, tbr_fixed_high = tbr_repeated_interval(treated, control, PRE_DAYS, ALPHA)
    assert tbr_low is not None and tbr_high is not None and tbr_fixed_low is not None and tbr_fixed_high is not None
    assert tbr_low <= tbr_fixed_low < tbr_fixed_high <= tbr_high


@cache
def growing_panel() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One test on issue 23's trending markets (+0.3% a day, noise 15% of the level), +10% on the treated market."""
    model = PanelModel(n_markets=21, n_treated=1, noise_sd=0.15)
    markets = model.markets(23)
    panel = model.panel(markets, PRE_DAYS + TEST_DAYS, np.random.default_rng(23))
    panel *= np.exp(0.003 * np.arange(PRE_DAYS + TEST_DAYS))[None, :]
    panel[markets.treated, PRE_DAYS:] *= 1.1
    return panel[markets.treated].mean(axis=0), panel[markets.donors].T, panel[markets.donors].sum(axis=0)


@pytest.mark.parametrize("day", [1, 8, TEST_DAYS])
def test_each_tbr_look_is_the_p_value_tbr_reports_on_that_days_data(day: int) -> None:
    treated, _, control = growing_panel()
    looks = tbr_look_p_values(treated, control, PRE_DAYS)
    rows = PRE_DAYS + day
    result = estimate_tbr(treated[:rows], control[:rows], slice(0, PRE_DAYS), slice(PRE_DAYS, rows), 1.0 - ALPHA)
    assert looks[day - 1] == result.p_value


@pytest.mark.parametrize("day", [1, 8, TEST_DAYS])
def test_each_synthetic_control_look_is_the_block_p_value_the_result_reports_on_that_days_data(day: int) -> None:
    treated, donors, _ = growing_panel()
    looks = scm_look_p_values(treated, donors, PRE_DAYS)
    rows = PRE_DAYS + day
    post = np.arange(rows) >= PRE_DAYS
    result = conformal_inference(treated[:rows], donors[:rows], post, alpha=ALPHA, n_permutations=1, pointwise=False)
    assert looks[day - 1] == result.p_value_block


def test_the_tbr_repeated_interval_is_the_tbr_result_interval_at_the_looks_level() -> None:
    treated, _, control = growing_panel()
    level = daily_boundaries(TEST_DAYS, TEST_DAYS, alpha=ALPHA)[-1]
    result = estimate_tbr(treated, control, slice(0, PRE_DAYS), slice(PRE_DAYS, treated.size), 1.0 - level)
    assert result.ci_status == "interval"
    assert tbr_repeated_interval(treated, control, PRE_DAYS, level) == (
        result.incremental.ci_low,
        result.incremental.ci_high,
    )


def test_a_tbr_look_held_below_one_over_its_windows_has_an_unbounded_interval() -> None:
    # Day 1 of 15 is held to about 1e-17: no p-value of 1 / (T0 + 1) or more rejects any effect there.
    treated, _, control = growing_panel()
    level = daily_boundaries(TEST_DAYS, 1, alpha=ALPHA)[0]
    assert level < 1.0 / (PRE_DAYS + 1)
    assert tbr_repeated_interval(treated[: PRE_DAYS + 1], control[: PRE_DAYS + 1], PRE_DAYS, level) == (None, None)


def test_an_interim_look_needs_an_observed_test_day() -> None:
    with pytest.raises(InvalidProblem) as raised:
        scm_look_p_values(np.ones(10), np.ones((10, 3)), 10)
    assert raised.value.field == "test_period"
