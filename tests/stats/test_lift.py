"""Lift, relative lift (delta method and Fieller), incremental outcome, iROAS, cost, MDE, arm validation.

References are independent implementations (scipy, statsmodels) or worked by hand from the formulas.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from statsmodels.stats import proportion as sm_proportion

from stats.arm_statistics import ArmSummary
from stats.errors import InvalidProblem
from stats.holdout_analysis import analyze_channel
from stats.lift import (
    AbsoluteLift,
    ScaledEstimate,
    absolute_lift,
    absolute_lift_from_arms,
    cost_per_incremental,
    fieller_ratio_interval,
    incremental_outcome,
    iroas,
    minimum_detectable_effect,
    relative_lift,
    z_critical,
)

# α for which z_{1−α/2} = 2 exactly, so hand-worked numbers stay round.
ALPHA_Z2 = float(2.0 * sps.norm.sf(2.0))


def _assert_all_finite(value: Any, path: str = "result") -> None:
    """No NaN or inf anywhere in a (nested) result: undefined quantities must be None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _assert_all_finite(getattr(value, f.name), f"{path}.{f.name}")
    elif isinstance(value, tuple | list):
        for i, item in enumerate(value):
            _assert_all_finite(item, f"{path}[{i}]")
    elif isinstance(value, float):
        assert math.isfinite(value), f"{path} is {value}"


def _mean_arm(values: np.ndarray, path: str = "arm") -> ArmSummary:
    return ArmSummary.from_mean(len(values), float(values.sum()), float((values * values).sum()), field_path=path)


# --- Welch (unpooled) difference of means -------------------------------------------------------


def test_welch_std_error_matches_scipy_exactly() -> None:
    rng = np.random.default_rng(11)
    t = rng.gamma(2.0, 15.0, size=400)
    h = rng.gamma(2.0, 13.0, size=90)
    lift = absolute_lift_from_arms(_mean_arm(t), _mean_arm(h))
    ref = sps.ttest_ind_from_stats(t.mean(), t.std(ddof=1), len(t), h.mean(), h.std(ddof=1), len(h), equal_var=False)
    ref_se = (t.mean() - h.mean()) / ref.statistic
    assert lift.std_error == pytest.approx(ref_se, rel=1e-12)
    assert lift.estimate == pytest.approx(t.mean() - h.mean(), rel=1e-12)
    assert lift.z_statistic == pytest.approx(ref.statistic, rel=1e-10)


def test_welch_p_value_matches_scipy_at_large_n() -> None:
    rng = np.random.default_rng(12)
    t = rng.normal(10.03, 3.0, size=200_000)
    h = rng.normal(10.0, 3.5, size=60_000)
    lift = absolute_lift_from_arms(_mean_arm(t), _mean_arm(h))
    ref = sps.ttest_ind_from_stats(t.mean(), t.std(ddof=1), len(t), h.mean(), h.std(ddof=1), len(h), equal_var=False)
    assert 0.001 < ref.pvalue < 0.5  # a p-value in the interesting range
    assert lift.p_value == pytest.approx(ref.pvalue, abs=1e-4)


# --- Difference of proportions (Wald) vs statsmodels ---------------------------------------------


@pytest.mark.parametrize(
    ("c1", "n1", "c2", "n2"),
    [(350, 10_000, 300, 10_000), (3150, 90_000, 310, 10_000), (12, 500, 3, 480), (0, 1000, 5, 1000)],
)
def test_proportion_difference_matches_statsmodels_wald(c1: int, n1: int, c2: int, n2: int) -> None:
    alpha = 0.05
    lift = absolute_lift_from_arms(ArmSummary.from_proportion(n1, c1), ArmSummary.from_proportion(n2, c2), alpha=alpha)
    ref = sm_proportion.test_proportions_2indep(c1, n1, c2, n2, method="wald", compare="diff")
    low, high = sm_proportion.confint_proportions_2indep(c1, n1, c2, n2, method="wald", compare="diff", alpha=alpha)
    assert lift.estimate == pytest.approx(ref.diff, abs=1e-12)
    assert lift.z_statistic == pytest.approx(ref.statistic, rel=1e-8)
    assert lift.p_value == pytest.approx(ref.pvalue, abs=1e-8)
    assert lift.ci_low == pytest.approx(low, abs=1e-8)
    assert lift.ci_high == pytest.approx(high, abs=1e-8)


@pytest.mark.parametrize(("c1", "n1", "c2", "n2"), [(350, 10_000, 300, 10_000), (3150, 90_000, 310, 10_000)])
@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_relative_lift_matches_statsmodels_log_ratio(c1: int, n1: int, c2: int, n2: int, alpha: float) -> None:
    t, h = ArmSummary.from_proportion(n1, c1), ArmSummary.from_proportion(n2, c2)
    rel = relative_lift(t.mean, t.std_error, h.mean, h.std_error, alpha=alpha)
    low, high = sm_proportion.confint_proportions_2indep(c1, n1, c2, n2, method="log", compare="ratio", alpha=alpha)
    assert rel.estimate == pytest.approx((c1 / n1) / (c2 / n2) - 1.0, rel=1e-12)
    assert rel.ci_low == pytest.approx(low - 1.0, abs=1e-8)
    assert rel.ci_high == pytest.approx(high - 1.0, abs=1e-8)
    # se of the log ratio for proportions is sqrt(1/c1 − 1/n1 + 1/c2 − 1/n2) (Katz et al. 1978).
    assert rel.std_error_log == pytest.approx(math.sqrt(1 / c1 - 1 / n1 + 1 / c2 - 1 / n2), rel=1e-10)


# --- Hand-worked ratio example -------------------------------------------------------------------


def test_fieller_and_delta_hand_worked_example() -> None:
    """Treatment mean a = 12 (SE 1), holdout mean b = 10 (SE 0.5), independent; z = 2 (α ≈ 0.0455).

    Fieller (Fieller 1954; Franz 2007, eq. for independent a, b):
        g = z²·v_b/b² = 4·0.25/100 = 0.01,   Q = a/b = 1.2
        inner = v_a + Q²·v_b − g·v_a = 1 + 1.44·0.25 − 0.01 = 1.35,   sqrt(1.35) = 1.161895003862225
        (z/b)·sqrt(inner) = 0.2·1.161895003862225 = 0.232379000772445
        ratio CI = (1.2 ∓ 0.232379000772445)/(1 − 0.01) = [0.977394948714702, 1.446847475527722]
        relative-lift CI = [−0.022605051285298, 0.446847475527722]
    Delta method on the log ratio:
        se_log = sqrt(v_a/a² + v_b/b²) = sqrt(1/144 + 0.0025) = sqrt(0.0094444…) = 0.097182531580755
        log Q = 0.182321556793955;  log Q ± 2·se_log = [−0.012043506367555, 0.376686619955465]
        relative-lift CI = exp(·) − 1 = [−0.011971273614081, 0.457447502834592]
        z = 0.182321556793955/0.097182531580755 = 1.876073341868567, p = 2Φ(−z) = 0.060645209666001
    """
    rel = relative_lift(12.0, 1.0, 10.0, 0.5, alpha=ALPHA_Z2)
    assert rel.estimate == pytest.approx(0.2, rel=1e-12)
    assert rel.std_error_log == pytest.approx(0.097182531580755, rel=1e-12)
    assert rel.ci_low == pytest.approx(-0.011971273614081, abs=1e-10)
    assert rel.ci_high == pytest.approx(0.457447502834592, abs=1e-10)
    assert rel.p_value == pytest.approx(0.060645209666001, abs=1e-10)
    assert rel.fieller is not None and not rel.fieller.unbounded
    assert rel.fieller.ci_low == pytest.approx(-0.022605051285298, abs=1e-10)
    assert rel.fieller.ci_high == pytest.approx(0.446847475527722, abs=1e-10)


def test_fieller_with_covariance_matches_franz_closed_form() -> None:
    """Franz (2007): ρ± = [Q − g·v_ab/v_b ± (z/|b|)·sqrt(v_a − 2Q·v_ab + Q²·v_b − g(v_a − v_ab²/v_b))]/(1 − g)."""
    a, sa, b, sb, vab = 5.0, 0.8, 4.0, 0.6, 0.12
    z = 2.0
    va, vb = sa * sa, sb * sb
    q, g = a / b, z * z * vb / (b * b)
    root = (z / abs(b)) * math.sqrt(va - 2 * q * vab + q * q * vb - g * (va - vab * vab / vb))
    low, high = (q - g * vab / vb - root) / (1 - g), (q - g * vab / vb + root) / (1 - g)
    interval = fieller_ratio_interval(a, sa, b, sb, alpha=ALPHA_Z2, covariance=vab)
    assert interval.ci_low == pytest.approx(low, rel=1e-10)
    assert interval.ci_high == pytest.approx(high, rel=1e-10)


def test_fieller_approaches_delta_method_when_denominator_is_precise() -> None:
    # Exact denominator: Fieller is Q ± z·SE_a/|b|, the (linear) delta method.
    exact = fieller_ratio_interval(12.0, 1.0, 10.0, 1e-9, alpha=0.05)
    z = z_critical(0.05)
    assert exact.ci_low == pytest.approx(1.2 - z * 0.1, rel=1e-9)
    assert exact.ci_high == pytest.approx(1.2 + z * 0.1, rel=1e-9)
    # Both means precise (CV 0.5%): Fieller and the log-ratio delta method agree closely.
    rel = relative_lift(12.0, 0.06, 10.0, 0.05, alpha=0.05)
    assert rel.fieller is not None and rel.fieller.ci_low is not None and rel.fieller.ci_high is not None
    assert rel.ci_low is not None and rel.ci_high is not None
    width = rel.ci_high - rel.ci_low
    assert abs(rel.fieller.ci_low - rel.ci_low) < 0.01 * width
    assert abs(rel.fieller.ci_high - rel.ci_high) < 0.01 * width


def test_fieller_unbounded_when_denominator_not_significant() -> None:
    interval = fieller_ratio_interval(2.0, 1.0, 0.5, 0.4, alpha=0.05)  # b/SE_b = 1.25 < 1.96
    assert interval.unbounded and interval.ci_low is None and interval.ci_high is None
    rel = relative_lift(2.0, 1.0, 0.5, 0.4, alpha=0.05)
    assert rel.fieller is not None and rel.fieller.unbounded
    assert any("unbounded" in w for w in rel.warnings)


# --- Consistency of p-values and intervals -------------------------------------------------------

means = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False)
ses = st.floats(min_value=1e-6, max_value=1e2, allow_nan=False)
alphas = st.sampled_from([0.01, 0.05, 0.1, 0.2])


@settings(max_examples=60, deadline=None)
@given(means, ses, means, ses, alphas)
def test_absolute_p_value_agrees_with_interval(mt: float, st_: float, mh: float, sh: float, alpha: float) -> None:
    lift = absolute_lift(mt, st_, mh, sh, alpha=alpha)
    assert lift.p_value is not None and lift.ci_low is not None and lift.ci_high is not None
    excludes_zero = lift.ci_low > 0 or lift.ci_high < 0
    margin = abs(abs(lift.estimate) - z_critical(alpha) * lift.std_error)
    if margin > 1e-9 * max(1.0, abs(lift.estimate)):
        assert (lift.p_value < alpha) == excludes_zero


@settings(max_examples=60, deadline=None)
@given(
    st.floats(min_value=1e-3, max_value=1e3),
    ses,
    st.floats(min_value=1e-3, max_value=1e3),
    ses,
    alphas,
)
def test_relative_p_value_agrees_with_interval(mt: float, st_: float, mh: float, sh: float, alpha: float) -> None:
    rel = relative_lift(mt, st_, mh, sh, alpha=alpha)
    assert rel.p_value is not None and rel.ci_low is not None and rel.std_error_log is not None
    ci_high = math.inf if rel.ci_high is None else rel.ci_high  # None: too wide to represent
    margin = abs(abs(math.log(mt / mh)) - z_critical(alpha) * rel.std_error_log)
    if margin > 1e-9:
        assert (rel.p_value < alpha) == (rel.ci_low > 0 or ci_high < 0)


# --- Undefined quantities are None, never NaN ----------------------------------------------------


def test_zero_holdout_rate_gives_no_relative_lift() -> None:
    analysis = analyze_channel(ArmSummary.from_proportion(1000, 20), ArmSummary.from_proportion(200, 0))
    rel = analysis.relative_lift
    assert rel is not None
    assert rel.estimate is None and rel.ci_low is None and rel.p_value is None and rel.fieller is None
    assert any("holdout mean is 0" in w for w in rel.warnings)
    assert analysis.mde is not None and analysis.mde.relative is None
    _assert_all_finite(analysis)


def test_no_variation_gives_no_test() -> None:
    analysis = analyze_channel(ArmSummary.from_proportion(1000, 0), ArmSummary.from_proportion(200, 0))
    assert analysis.p_value is None and analysis.absolute_lift.ci_low is None
    assert analysis.decision.action == "investigate"
    assert analysis.warnings
    _assert_all_finite(analysis)


def test_zero_treatment_rate_keeps_estimate_but_not_log_interval() -> None:
    rel = relative_lift(0.0, 0.0, 0.05, 0.01)
    assert rel.estimate == pytest.approx(-1.0)
    assert rel.ci_low is None and rel.p_value is None
    assert rel.fieller is not None and rel.fieller.ci_low is not None  # Fieller needs no positivity
    assert any("both means above 0" in w for w in rel.warnings)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=2, max_value=10**7),
    st.floats(min_value=0.0, max_value=1.0),
    st.integers(min_value=2, max_value=10**6),
    st.floats(min_value=0.0, max_value=1.0),
    st.one_of(st.none(), st.floats(min_value=0.0, max_value=1e7)),
    st.one_of(st.none(), st.floats(min_value=0.01, max_value=1e3)),
)
def test_analysis_never_returns_nan_or_inf(
    nt: int, rt: float, nh: int, rh: float, spend: float | None, value: float | None
) -> None:
    t = ArmSummary.from_proportion(nt, round(nt * rt))
    h = ArmSummary.from_proportion(nh, round(nh * rh))
    analysis = analyze_channel(
        t, h, spend=spend, value_per_conversion=value if spend is not None else None, holdout_fraction=0.1
    )
    _assert_all_finite(analysis)


# --- Incremental outcome, iROAS, cost per incremental conversion, MDE ----------------------------


def test_incremental_outcome_scales_lift_by_treated_units() -> None:
    lift = absolute_lift(0.035, 0.0006, 0.031, 0.0017)
    inc = incremental_outcome(lift, 90_000)
    assert inc.estimate == pytest.approx(0.004 * 90_000)
    assert inc.std_error == pytest.approx(lift.std_error * 90_000)
    assert lift.ci_low is not None and lift.ci_high is not None
    assert inc.ci_low == pytest.approx(lift.ci_low * 90_000)
    assert inc.ci_high == pytest.approx(lift.ci_high * 90_000)
    assert inc.p_value == lift.p_value


def test_iroas_for_conversions_and_revenue() -> None:
    inc = ScaledEstimate(estimate=360.0, std_error=160.0, ci_low=40.0, ci_high=680.0, p_value=0.03)
    value = iroas(inc, spend=5000.0, value_per_unit=40.0)
    assert value is not None
    assert (value.estimate, value.ci_low, value.ci_high) == pytest.approx((2.88, 0.32, 5.44))
    revenue = iroas(inc, spend=180.0)
    assert revenue is not None and revenue.estimate == pytest.approx(2.0)
    assert iroas(inc, spend=0.0) is None


def test_cost_per_incremental_inverts_the_incremental_interval() -> None:
    inc = ScaledEstimate(estimate=50.0, std_error=10.0, ci_low=25.0, ci_high=100.0, p_value=0.001)
    cost = cost_per_incremental(inc, spend=1000.0)
    assert cost is not None and not cost.unbounded
    assert (cost.estimate, cost.ci_low, cost.ci_high) == pytest.approx((20.0, 10.0, 40.0))


def test_cost_per_incremental_unbounded_when_interval_reaches_zero() -> None:
    inc = ScaledEstimate(estimate=10.0, std_error=8.0, ci_low=-5.0, ci_high=40.0, p_value=0.2)
    cost = cost_per_incremental(inc, spend=1000.0)
    assert cost is not None and cost.unbounded
    assert cost.estimate == pytest.approx(100.0)
    assert cost.ci_low == pytest.approx(25.0) and cost.ci_high is None
    negative = cost_per_incremental(
        ScaledEstimate(estimate=-10.0, std_error=8.0, ci_low=-30.0, ci_high=-1.0, p_value=0.04), spend=1000.0
    )
    assert negative is not None and negative.estimate is None
    assert negative.ci_low is None and negative.ci_high is None and negative.unbounded
    assert cost_per_incremental(inc, spend=0.0) is None


def test_mde_formula_and_detection_rate() -> None:
    se = 0.002
    mde = minimum_detectable_effect(se, alpha=0.05, power=0.8)
    assert mde == pytest.approx((sps.norm.ppf(0.975) + sps.norm.ppf(0.8)) * se, rel=1e-12)
    # A true lift equal to the MDE is detected (z > z_{0.975}) 80% of the time, up to the far tail.
    detected = sps.norm.sf(sps.norm.ppf(0.975) - mde / se) + sps.norm.cdf(-sps.norm.ppf(0.975) - mde / se)
    assert detected == pytest.approx(0.8, abs=1e-4)


# --- Validation --------------------------------------------------------------------------------

P = "observations[meta].treatment"


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: ArmSummary.from_proportion(-5, 0, field_path=P), f"{P}.units"),
        (lambda: ArmSummary.from_proportion(0, 0, field_path=P), f"{P}.units"),
        (lambda: ArmSummary.from_proportion(100, -1, field_path=P), f"{P}.conversions"),
        (lambda: ArmSummary.from_proportion(100, 101, field_path=P), f"{P}.conversions"),
        (lambda: ArmSummary.from_proportion(100, 2.5, field_path=P), f"{P}.conversions"),  # type: ignore[arg-type]
        (lambda: ArmSummary.from_proportion(100.5, 2, field_path=P), f"{P}.units"),  # type: ignore[arg-type]
        (lambda: ArmSummary.from_proportion(True, 0, field_path=P), f"{P}.units"),
        (lambda: ArmSummary.from_mean(0, 0.0, 0.0, field_path=P), f"{P}.units"),
        (lambda: ArmSummary.from_mean(10, 100.0, 500.0, field_path=P), f"{P}.sum_squares"),  # Σy²<(Σy)²/n
        (lambda: ArmSummary.from_mean(10, 100.0, -1.0, field_path=P), f"{P}.sum_squares"),
        (lambda: ArmSummary.from_mean(10, math.nan, 1.0, field_path=P), f"{P}.sum"),
        (lambda: ArmSummary.from_mean(10, 1.0, math.inf, field_path=P), f"{P}.sum_squares"),
        (
            lambda: ArmSummary.from_mean(10, 10.0, 20.0, covariate_sum=5.0, field_path=P),
            f"{P}.covariate_sum_squares",
        ),
        (
            lambda: ArmSummary.from_mean(
                10, 10.0, 20.0, covariate_sum=10.0, covariate_sum_squares=5.0, cross_sum=1.0, field_path=P
            ),
            f"{P}.covariate_sum_squares",
        ),
        (
            # s²_y = s²_x = 10/9 but Σ(x − x̄)(y − ȳ) = 40 − 10 = 30 > 10: correlation > 1.
            lambda: ArmSummary.from_mean(
                10, 10.0, 20.0, covariate_sum=10.0, covariate_sum_squares=20.0, cross_sum=40.0, field_path=P
            ),
            f"{P}.cross_sum",
        ),
    ],
)
def test_invalid_arm_names_the_field(build: Any, field: str) -> None:
    with pytest.raises(InvalidProblem) as excinfo:
        build()
    assert excinfo.value.field == field
    assert excinfo.value.reason


def test_sum_squares_within_rounding_is_accepted() -> None:
    # Ten units of exactly 3.3: Σy² = 108.9 equals (Σy)²/n up to float rounding.
    arm = ArmSummary.from_mean(10, 33.0, 108.9 * (1 - 1e-12))
    assert arm.variance == 0.0 and arm.std_error == 0.0


def test_arm_moments() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(5.0, 2.0, size=50)
    x = y + rng.normal(size=50)
    arm = ArmSummary.from_mean(
        50,
        float(y.sum()),
        float((y * y).sum()),
        covariate_sum=float(x.sum()),
        covariate_sum_squares=float((x * x).sum()),
        cross_sum=float((x * y).sum()),
    )
    assert arm.mean == pytest.approx(y.mean(), rel=1e-12)
    assert arm.variance == pytest.approx(y.var(ddof=1), rel=1e-10)
    assert arm.std_error == pytest.approx(y.std(ddof=1) / math.sqrt(50), rel=1e-10)
    assert arm.covariate_variance == pytest.approx(x.var(ddof=1), rel=1e-10)
    assert arm.covariance == pytest.approx(np.cov(x, y)[0, 1], rel=1e-10)
    conversions = ArmSummary.from_proportion(200, 30)
    assert conversions.mean == 0.15
    assert conversions.std_error == pytest.approx(math.sqrt(0.15 * 0.85 / 200))
    assert conversions.variance == pytest.approx(np.r_[np.ones(30), np.zeros(170)].var(ddof=1))


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: absolute_lift(1.0, 0.1, 0.9, 0.1, alpha=0.0), "alpha"),
        (lambda: absolute_lift(1.0, 0.1, 0.9, 0.1, alpha=1.5), "alpha"),
        (lambda: minimum_detectable_effect(0.1, power=1.0), "power"),
        (lambda: iroas(ScaledEstimate(1.0, 1.0, 0.0, 2.0, 0.5), spend=-1.0), "spend"),
        (
            lambda: iroas(ScaledEstimate(1.0, 1.0, 0.0, 2.0, 0.5), spend=10.0, value_per_unit=0.0),
            "value_per_conversion",
        ),
        (lambda: incremental_outcome(AbsoluteLift(1.0, 1.0, 0.0, 2.0, 0.5, 1.0), 0), "treatment.units"),
        (
            lambda: analyze_channel(
                ArmSummary.from_mean(100, 10.0, 50.0),
                ArmSummary.from_mean(100, 10.0, 50.0),
                spend=100.0,
                value_per_conversion=2.0,
            ),
            "value_per_conversion",
        ),
        (
            lambda: analyze_channel(
                ArmSummary.from_proportion(100, 10), ArmSummary.from_proportion(100, 10), value_per_conversion=2.0
            ),
            "spend",
        ),
        (
            lambda: analyze_channel(
                ArmSummary.from_proportion(100, 10, field_path="t"),
                ArmSummary.from_mean(100, 10.0, 50.0, field_path="h"),
            ),
            "h.kind",
        ),
        (
            lambda: analyze_channel(
                ArmSummary.from_proportion(100, 10), ArmSummary.from_proportion(100, 10), holdout_fraction=1.0
            ),
            "holdout_fraction",
        ),
        (
            lambda: analyze_channel(
                ArmSummary.from_proportion(100, 10), ArmSummary.from_proportion(100, 10), minimum_relative_lift=-0.1
            ),
            "minimum_relative_lift",
        ),
    ],
)
def test_invalid_options_name_the_field(call: Any, field: str) -> None:
    with pytest.raises(InvalidProblem) as excinfo:
        call()
    assert excinfo.value.field == field
