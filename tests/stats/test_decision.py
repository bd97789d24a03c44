"""The decision rules, one test per rule, and the orchestration that feeds them (incl. Holm)."""

from __future__ import annotations

from typing import Any

import pytest

from stats.arm_statistics import ArmSummary
from stats.decision import decide
from stats.holdout_analysis import analyze_channel, analyze_sequential_channel, apply_holm
from stats.multiplicity import holm_adjust

BASE: dict[str, Any] = {
    "kind": "proportion",
    "alpha": 0.05,
    "estimate": 0.004,
    "ci_low": 0.001,
    "ci_high": 0.007,
    "p_value": 0.01,
    "mde": 0.005,
    "mde_relative": 0.15,
}


def _decide(**overrides: Any) -> tuple[str, str]:
    decision = decide(**{**BASE, **overrides})
    return decision.action, decision.reason


def test_srm_means_investigate_whatever_the_lift() -> None:
    action, reason = _decide(srm_flagged=True, srm_p_value=1e-7)
    assert action == "investigate" and "split" in reason and "1e-07" in reason


def test_data_problem_means_investigate() -> None:
    action, reason = _decide(data_problems=("The pre-period covariate differs between arms.",))
    assert action == "investigate" and "covariate" in reason


def test_no_test_possible_means_investigate() -> None:
    assert _decide(p_value=None, ci_low=None, ci_high=None)[0] == "investigate"


def test_significant_positive_lift_scales() -> None:
    action, reason = _decide()
    assert action == "scale" and "+0.40 percentage points" in reason


def test_significant_positive_lift_that_pays_back_scales() -> None:
    action, reason = _decide(iroas_ci_low=1.3, iroas_ci_high=4.0)
    assert action == "scale" and "1.30" in reason


def test_significant_lift_with_uncertain_payback_iterates() -> None:
    action, reason = _decide(iroas_ci_low=0.4, iroas_ci_high=3.0)
    assert action == "iterate" and "0.40" in reason


def test_conclusively_unprofitable_channel_stops() -> None:
    assert _decide(iroas_ci_low=0.1, iroas_ci_high=0.8)[0] == "stop"
    # Also when the lift itself is not significant.
    assert _decide(p_value=0.3, ci_low=-0.001, iroas_ci_low=-0.2, iroas_ci_high=0.9)[0] == "stop"


def test_significant_negative_lift_stops() -> None:
    action, reason = _decide(estimate=-0.004, ci_low=-0.007, ci_high=-0.001)
    assert action == "stop" and "lowers" in reason


def test_conclusive_null_stops() -> None:
    # Not significant, but the interval rules out any lift as large as the 0.5 pp the marketer wants.
    action, reason = _decide(p_value=0.4, estimate=0.0005, ci_low=-0.0015, ci_high=0.0025, minimum_effect=0.005)
    assert action == "stop" and "conclusive" in reason


def test_real_but_too_small_lift_stops() -> None:
    action, reason = _decide(minimum_effect=0.01)
    assert action == "stop" and "real but small" in reason


def test_underpowered_test_iterates_and_quotes_the_mde() -> None:
    action, reason = _decide(p_value=0.3, estimate=0.002, ci_low=-0.002, ci_high=0.006, minimum_effect=0.003)
    assert action == "iterate"
    assert "+0.50 percentage points" in reason and "15.0%" in reason


def test_significant_raw_but_not_after_holm_iterates() -> None:
    action, reason = _decide(p_value=0.08)  # raw interval excludes 0, adjusted p does not
    assert action == "iterate" and "several channels" in reason


def test_mean_metric_wording() -> None:
    _, reason = _decide(kind="mean", estimate=1.25, ci_low=0.5, ci_high=2.0)
    assert "+1.25 per unit" in reason


# --- Orchestration ----------------------------------------------------------------------------


def test_srm_from_holdout_fraction_drives_the_decision() -> None:
    t = ArmSummary.from_proportion(90_500, 4_000)
    h = ArmSummary.from_proportion(9_500, 300)
    analysis = analyze_channel(t, h, holdout_fraction=0.1)
    assert analysis.srm is not None and analysis.srm.flagged
    assert analysis.srm_p_value == analysis.srm.p_value
    assert analysis.decision.action == "investigate"
    assert analyze_channel(t, h).decision.action == "scale"  # without the SRM check it would look great


def test_apply_holm_adjusts_p_values_and_retakes_decisions() -> None:
    strong = analyze_channel(ArmSummary.from_proportion(90_000, 3_600), ArmSummary.from_proportion(10_000, 300))
    marginal = analyze_channel(ArmSummary.from_proportion(90_000, 3_150), ArmSummary.from_proportion(10_000, 310))
    flat = analyze_channel(ArmSummary.from_proportion(90_000, 2_700), ArmSummary.from_proportion(10_000, 300))
    assert marginal.p_value is not None and 0.025 < marginal.p_value < 0.05
    assert marginal.decision.action == "scale"  # alone, p ≈ 0.03 < 0.05
    adjusted = apply_holm([strong, marginal, flat])
    expected = holm_adjust([a.p_value for a in (strong, marginal, flat)])  # type: ignore[misc]
    assert [a.p_value_adjusted for a in adjusted] == pytest.approx(expected)
    assert [a.p_value for a in adjusted] == [strong.p_value, marginal.p_value, flat.p_value]
    assert adjusted[0].decision.action == "scale"
    assert adjusted[1].decision.action == "iterate"  # p ≈ 0.06 after Holm
    assert adjusted[2].decision.action == "iterate"


def test_apply_holm_on_sequential_analyses_and_missing_p_values() -> None:
    t = ArmSummary.from_proportion(90_000, 3_600)
    h = ArmSummary.from_proportion(10_000, 300)
    seq = analyze_sequential_channel(t, h, mixing_variance=1e-5)
    broken = analyze_sequential_channel(
        ArmSummary.from_proportion(100, 0), ArmSummary.from_proportion(100, 0), mixing_variance=1e-5
    )
    out = apply_holm([seq, broken])
    assert out[0].p_value_adjusted == seq.p_value  # a family of one
    assert out[1].p_value_adjusted is None and out[1].decision.action == "investigate"


def test_revenue_channel_reports_iroas_and_no_cost_per_conversion() -> None:
    # 20,000 treated users with mean revenue 5.30 (sd ≈ 20), 5,000 holdout at 5.00.
    t = ArmSummary.from_mean(20_000, 106_000.0, 20_000 * (400.0 + 5.3**2))
    h = ArmSummary.from_mean(5_000, 25_000.0, 5_000 * (400.0 + 25.0))
    analysis = analyze_channel(t, h, spend=2_000.0, minimum_relative_lift=0.02)
    assert analysis.iroas is not None and analysis.cost_per_incremental is None
    assert analysis.incremental.estimate == pytest.approx(0.3 * 20_000)
    assert analysis.iroas.estimate == pytest.approx(0.3 * 20_000 / 2_000)
    assert analysis.minimum_effect == pytest.approx(0.1)
    assert analysis.relative_lift is not None and analysis.relative_lift.estimate == pytest.approx(0.06)
    assert analysis.decision.action == "iterate"  # not significant, and 0.1 per unit is still plausible


def test_mde_reported_relative_to_holdout() -> None:
    analysis = analyze_channel(ArmSummary.from_proportion(90_000, 3_150), ArmSummary.from_proportion(10_000, 310))
    assert analysis.mde is not None
    assert analysis.mde.relative == pytest.approx(analysis.mde.absolute / 0.031)
    assert analysis.mde.power == 0.8
