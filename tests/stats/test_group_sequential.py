"""Alpha-spending boundaries against DeMets & Lan's published table and a simulation of the canonical process."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from stats.errors import InvalidProblem
from stats.group_sequential import alpha_spent, monitored_power, repeated_p_value, spending_boundaries

FIVE_LOOKS = [0.2, 0.4, 0.6, 0.8, 1.0]


def test_obrien_fleming_type_boundaries_match_demets_and_lan_table_1() -> None:
    # DeMets & Lan (1994), Stat. Med. 13, table 1: alpha1*(t), five equally spaced looks, two-sided 0.05.
    bounds = spending_boundaries(FIVE_LOOKS, alpha=0.05, spending="obrien_fleming")
    assert bounds.critical_values == pytest.approx([4.877, 3.357, 2.680, 2.290, 2.031], abs=6e-4)


def test_pocock_type_boundaries_match_demets_and_lan_table_1() -> None:
    bounds = spending_boundaries(FIVE_LOOKS, alpha=0.05, spending="pocock")
    assert bounds.critical_values == pytest.approx([2.438, 2.427, 2.410, 2.397, 2.386], abs=6e-4)


def test_one_look_at_full_information_is_the_fixed_horizon_test() -> None:
    bounds = spending_boundaries([1.0], alpha=0.05)
    assert bounds.nominal_levels[0] == pytest.approx(0.05, rel=1e-9)
    assert bounds.critical_values[0] == pytest.approx(1.959964, abs=1e-6)


@pytest.mark.parametrize("spending", ["obrien_fleming", "pocock"])
def test_simulated_brownian_paths_cross_each_boundary_as_often_as_the_spending_function_allows(spending: str) -> None:
    # Unequally spaced looks, as a marketer reads a test: the first-crossing frequency at each look of
    # 400,000 simulated standard Brownian paths equals the alpha spent there (within 4 binomial SEs).
    fractions = np.array([0.1, 0.25, 0.3, 0.55, 0.7, 0.9, 1.0])
    bounds = spending_boundaries(fractions, alpha=0.05, spending=spending)  # type: ignore[arg-type]
    rng = np.random.default_rng(20261207)
    increments = rng.standard_normal((400_000, fractions.size)) * np.sqrt(np.diff(np.concatenate([[0.0], fractions])))
    z = np.cumsum(increments, axis=1) / np.sqrt(fractions)
    crossed = np.abs(z) >= np.asarray(bounds.critical_values)
    first = np.where(crossed.any(axis=1), np.argmax(crossed, axis=1), -1)
    spent = np.diff(np.concatenate([[0.0], alpha_spent(fractions, 0.05, spending)]))  # type: ignore[arg-type]
    for look, expected in enumerate(spent):
        observed = np.mean(first == look)
        se = np.sqrt(expected * (1.0 - expected) / first.size)
        assert abs(observed - expected) <= 4.0 * se + 1e-6
    assert np.mean(first >= 0) == pytest.approx(0.05, abs=4.0 * np.sqrt(0.05 * 0.95 / first.size))


def test_tiny_early_spends_still_give_finite_boundaries() -> None:
    # A look on day 1 of 60 spends about 1e-54 under O'Brien-Fleming-type spending: solved in log space.
    bounds = spending_boundaries(np.arange(1, 61) / 60, alpha=0.05)
    assert all(np.isfinite(bounds.critical_values))
    assert list(bounds.critical_values) == sorted(bounds.critical_values, reverse=True)


def test_the_repeated_p_value_is_at_most_alpha_exactly_when_some_look_crosses_its_boundary() -> None:
    fractions = [0.25, 0.5, 0.75, 1.0]
    levels = spending_boundaries(fractions, alpha=0.05).nominal_levels
    crossing = [0.5, levels[1] * 0.99, 0.3, 0.2]
    missing = [0.5, levels[1] * 1.01, levels[2] * 1.01, levels[3] * 1.01]
    assert repeated_p_value(crossing, fractions) <= 0.05
    assert repeated_p_value(missing, fractions) > 0.05


def test_the_repeated_p_value_of_a_single_final_look_is_its_p_value() -> None:
    assert repeated_p_value([0.0123], [1.0]) == pytest.approx(0.0123, rel=2e-3)


def test_looks_must_be_increasing_and_alpha_a_probability() -> None:
    with pytest.raises(InvalidProblem) as raised:
        spending_boundaries([0.5, 0.4], alpha=0.05)
    assert raised.value.field == "fractions"
    with pytest.raises(InvalidProblem) as raised:
        spending_boundaries([1.0], alpha=1.5)
    assert raised.value.field == "alpha"


def test_monitored_power_at_no_effect_is_alpha() -> None:
    assert monitored_power(0.05, 15, alpha=0.05).power == pytest.approx(0.05, abs=1e-6)


@pytest.mark.parametrize("fixed_power", [0.5, 0.8])
def test_monitored_power_matches_simulated_brownian_paths_with_drift(fixed_power: float) -> None:
    looks = 15
    predicted = monitored_power(fixed_power, looks, alpha=0.05)
    # The drift giving the fixed-horizon test that power, then 200,000 simulated paths observed daily.
    z = 1.959964
    drifts = np.linspace(0.0, 6.0, 60_001)
    fixed = scipy_stats.norm.cdf(drifts - z) + scipy_stats.norm.cdf(-drifts - z)
    drift = float(drifts[np.argmin(np.abs(fixed - fixed_power))])
    fractions = np.arange(1, looks + 1) / looks
    bounds = np.asarray(spending_boundaries(fractions, alpha=0.05).critical_values)
    rng = np.random.default_rng(17)
    steps = np.full(looks, 1.0 / looks)
    paths = np.cumsum(drift * steps + rng.standard_normal((200_000, looks)) * np.sqrt(steps), axis=1)
    crossed = np.abs(paths / np.sqrt(fractions)) >= bounds
    power = float(np.mean(crossed.any(axis=1)))
    first = np.where(crossed.any(axis=1), np.argmax(crossed, axis=1) + 1, looks)
    se = np.sqrt(power * (1.0 - power) / 200_000)
    assert predicted.power == pytest.approx(power, abs=4.0 * se + 1e-3)
    assert predicted.stopped_early == pytest.approx(float(np.mean(crossed[:, :-1].any(axis=1))), abs=5e-3)
    assert predicted.expected_looks == pytest.approx(float(np.mean(first)), abs=0.05)
    assert predicted.power <= fixed_power  # monitoring costs a little power, never adds


def test_a_conservative_test_keeps_its_power_when_monitored() -> None:
    plan = monitored_power(0.03, 15, alpha=0.05)
    assert plan.power == pytest.approx(0.03, abs=1e-9)
    assert plan.stopped_early <= plan.power
