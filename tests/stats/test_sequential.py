"""Always-valid inference (mSPRT, Johari et al.) against the mixture integral computed numerically."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, optimize
from scipy import stats as sps

from stats.arm_statistics import ArmSummary
from stats.errors import InvalidProblem
from stats.holdout_analysis import analyze_channel, analyze_sequential_channel
from stats.sequential import (
    EarlierLook,
    always_valid_difference,
    combine_looks,
    mixing_variance_for_horizon,
    running_intersection,
    running_min,
)


def _mixture_likelihood_ratio(estimate: float, variance: float, tau2: float, null: float = 0.0) -> float:
    """Λ = ∫ φ_V(θ̂ − θ) dN(null, τ²)(θ) / φ_V(θ̂ − null), by numerical integration."""
    sd, tau = math.sqrt(variance), math.sqrt(tau2)

    def integrand(theta: float) -> float:
        return float(sps.norm.pdf(estimate, theta, sd) * sps.norm.pdf(theta, null, tau))

    lo, hi = min(estimate, null) - 12 * (sd + tau), max(estimate, null) + 12 * (sd + tau)
    numerator, _ = integrate.quad(integrand, lo, hi, points=[estimate, null], epsabs=0, epsrel=1e-12, limit=200)
    return float(numerator / sps.norm.pdf(estimate, null, sd))


@pytest.mark.parametrize(
    ("estimate", "variance", "tau2"),
    [(0.004, 0.0018**2, 3e-5), (0.5, 0.04, 0.01), (-0.2, 0.01, 0.5), (0.0, 1.0, 1.0), (3.0, 1.0, 10.0)],
)
def test_p_value_is_inverse_of_numerical_mixture_ratio(estimate: float, variance: float, tau2: float) -> None:
    result = always_valid_difference(estimate, variance, mixing_variance=tau2)
    expected = min(1.0, 1.0 / _mixture_likelihood_ratio(estimate, variance, tau2))
    assert result.p_value == pytest.approx(expected, rel=1e-7)


def test_matches_johari_two_stream_formula() -> None:
    """Johari et al.: Λ_n = sqrt(2σ²/(2σ²+nτ²))·exp(n²τ²(Ȳ_n − X̄_n)² / (4σ²(2σ² + nτ²)))."""
    sigma2, n, tau2, diff = 4.0, 500, 0.05, 0.3
    lam = math.sqrt(2 * sigma2 / (2 * sigma2 + n * tau2)) * math.exp(
        n * n * tau2 * diff**2 / (4 * sigma2 * (2 * sigma2 + n * tau2))
    )
    result = always_valid_difference(diff, 2 * sigma2 / n, mixing_variance=tau2)
    assert result.p_value == pytest.approx(min(1.0, 1 / lam), rel=1e-12)


@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_confidence_sequence_bounds_are_where_the_ratio_reaches_one_over_alpha(alpha: float) -> None:
    estimate, variance, tau2 = 0.7, 0.09, 0.4
    result = always_valid_difference(estimate, variance, mixing_variance=tau2, alpha=alpha)
    assert result.ci_low is not None and result.ci_high is not None
    for bound in (result.ci_low, result.ci_high):
        assert _mixture_likelihood_ratio(estimate, variance, tau2, null=bound) == pytest.approx(1 / alpha, rel=1e-7)
    # Always wider than the fixed-horizon interval.
    assert result.ci_high - estimate > sps.norm.ppf(1 - alpha / 2) * math.sqrt(variance)


def test_p_value_agrees_with_confidence_sequence() -> None:
    rng = np.random.default_rng(4)
    for estimate, variance, tau2 in zip(
        rng.normal(0, 1, 500), rng.gamma(1, 0.1, 500), rng.gamma(1, 0.5, 500), strict=True
    ):
        result = always_valid_difference(float(estimate), float(variance), mixing_variance=float(tau2))
        assert result.p_value is not None and result.ci_low is not None and result.ci_high is not None
        if min(abs(result.ci_low), abs(result.ci_high)) > 1e-9:
            assert (result.p_value < 0.05) == (result.ci_low > 0 or result.ci_high < 0)


def test_mixing_variance_for_horizon_minimises_final_width() -> None:
    final_variance, alpha = 2.5e-6, 0.05

    def half_width(tau2: float) -> float:
        result = always_valid_difference(0.0, final_variance, mixing_variance=tau2, alpha=alpha)
        assert result.ci_high is not None
        return result.ci_high

    best = optimize.minimize_scalar(
        lambda log_r: half_width(math.exp(log_r) * final_variance),
        bounds=(-5, 8),
        method="bounded",
        options={"xatol": 1e-10},
    )
    tau2 = mixing_variance_for_horizon(final_variance, alpha=alpha)
    assert tau2 == pytest.approx(math.exp(best.x) * final_variance, rel=1e-4)
    r = tau2 / final_variance
    assert r == pytest.approx(2 * math.log(1 / alpha) + math.log1p(r), rel=1e-12)  # the fixed point
    assert 8.0 < r < 8.5


def test_running_min_and_intersection() -> None:
    assert running_min([0.5, None, 0.2, 0.3, 0.01]) == [0.5, 0.5, 0.2, 0.2, 0.01]
    assert running_min([None, 0.4]) == [None, 0.4]
    intervals = [(-1.0, 3.0), None, (0.0, 4.0), (-2.0, 2.0), (2.5, 5.0)]
    # The last interval would empty the intersection: the previous one is kept.
    assert running_intersection(intervals) == [(-1.0, 3.0), (-1.0, 3.0), (0.0, 3.0), (0.0, 2.0), (0.0, 2.0)]


def test_sequential_channel_analysis() -> None:
    t = ArmSummary.from_proportion(90_000, 3_150, field_path="t")
    h = ArmSummary.from_proportion(10_000, 310, field_path="h")
    fixed = analyze_channel(t, h, spend=5_000.0, value_per_conversion=40.0)
    tau2 = mixing_variance_for_horizon(fixed.absolute_lift.std_error**2)
    seq = analyze_sequential_channel(t, h, mixing_variance=tau2, spend=5_000.0, value_per_conversion=40.0)
    assert seq.absolute_lift.estimate == pytest.approx(fixed.absolute_lift.estimate)
    assert seq.absolute_lift.std_error == pytest.approx(fixed.absolute_lift.std_error)
    assert seq.absolute_lift.ci_low is not None and fixed.absolute_lift.ci_low is not None
    assert seq.absolute_lift.ci_low < fixed.absolute_lift.ci_low  # the price of peeking
    assert seq.p_value is not None and fixed.p_value is not None and seq.p_value > fixed.p_value
    assert seq.incremental.ci_low == pytest.approx(seq.absolute_lift.ci_low * 90_000)
    assert seq.iroas is not None and seq.iroas.ci_low == pytest.approx(seq.absolute_lift.ci_low * 90_000 * 40 / 5_000)
    assert seq.mde is not None and fixed.mde is not None and seq.mde.absolute > fixed.mde.absolute
    assert seq.decision.action == "iterate"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"estimate": 0.1, "variance": 0.01, "mixing_variance": 0.0}, "mixing_variance"),
        ({"estimate": 0.1, "variance": 0.01, "mixing_variance": math.nan}, "mixing_variance"),
        ({"estimate": 0.1, "variance": -0.01, "mixing_variance": 1.0}, "variance"),
        ({"estimate": 0.1, "variance": 0.01, "mixing_variance": 1.0, "alpha": 0.0}, "alpha"),
    ],
)
def test_invalid_input_names_the_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(InvalidProblem) as excinfo:
        always_valid_difference(**kwargs)
    assert excinfo.value.field == field
    with pytest.raises(InvalidProblem) as excinfo:
        mixing_variance_for_horizon(0.0)
    assert excinfo.value.field == "final_variance"


def test_no_variation_gives_no_interval() -> None:
    result = always_valid_difference(0.0, 0.0, mixing_variance=1.0)
    assert result.p_value is None and result.ci_low is None and result.warnings


def test_combining_looks_keeps_the_running_intersection_and_minimum() -> None:
    first = always_valid_difference(0.02, 1e-5, mixing_variance=1e-4, alpha=0.05)
    second = always_valid_difference(0.005, 5e-6, mixing_variance=1e-4, alpha=0.05)
    assert first.p_value is not None and second.p_value is not None
    assert first.ci_low is not None and first.ci_high is not None
    assert second.ci_low is not None and second.ci_high is not None
    combined = combine_looks(second, [EarlierLook(first.ci_low, first.ci_high, first.p_value)])
    assert combined.looks == 2
    assert combined.estimate == second.estimate
    assert combined.p_value == min(first.p_value, second.p_value)
    assert combined.ci_low == max(first.ci_low, second.ci_low)
    assert combined.ci_high == min(first.ci_high, second.ci_high)


def test_a_significant_look_stays_significant_after_weaker_ones() -> None:
    strong = always_valid_difference(0.03, 1e-5, mixing_variance=1e-4, alpha=0.05)
    weak = always_valid_difference(0.0, 5e-6, mixing_variance=1e-4, alpha=0.05)
    assert strong.p_value is not None and strong.p_value < 0.05
    assert weak.p_value is not None and weak.p_value > 0.05
    combined = combine_looks(weak, [EarlierLook(strong.ci_low, strong.ci_high, strong.p_value)])
    assert combined.p_value is not None and combined.p_value < 0.05
    assert combined.ci_low is not None and combined.ci_low > 0.0


def test_a_look_without_an_interval_keeps_the_earlier_bounds() -> None:
    empty = always_valid_difference(0.0, 0.0, mixing_variance=1e-4, alpha=0.05)
    combined = combine_looks(empty, [EarlierLook(-0.01, 0.02, 0.4)])
    assert (combined.ci_low, combined.ci_high, combined.p_value) == (-0.01, 0.02, 0.4)
