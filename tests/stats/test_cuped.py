"""CUPED from aggregates against the same adjustment computed directly on unit-level data."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from stats.arm_statistics import ArmSummary
from stats.cuped import cuped_adjust
from stats.errors import InvalidProblem
from stats.holdout_analysis import analyze_channel

Arrays = tuple[np.ndarray, np.ndarray]


def _arm(y: np.ndarray, x: np.ndarray, *, proportion: bool, path: str) -> ArmSummary:
    covariate = {
        "covariate_sum": float(x.sum()),
        "covariate_sum_squares": float((x * x).sum()),
        "cross_sum": float((x * y).sum()),
    }
    if proportion:
        return ArmSummary.from_proportion(len(y), int(y.sum()), field_path=path, **covariate)
    return ArmSummary.from_mean(len(y), float(y.sum()), float((y * y).sum()), field_path=path, **covariate)


def _revenue(rng: np.random.Generator, n: int, effect: float) -> Arrays:
    x = rng.gamma(2.0, 20.0, size=n)  # pre-period revenue per user
    y = 0.8 * x + rng.gamma(1.5, 10.0, size=n) + effect
    return y, x


def _conversions(rng: np.random.Generator, n: int, effect: float) -> Arrays:
    x = rng.poisson(3.0, size=n).astype(float)  # pre-period sessions
    p = np.clip(0.02 + 0.04 * x + effect, 0.0, 1.0)
    return (rng.random(n) < p).astype(float), x


def _unit_level_reference(t: Arrays, h: Arrays) -> dict[str, float]:
    """Deng et al. (2013) on unit data: θ from the pooled arms, Y_adj = Y − θ(X − X̄_pooled)."""
    y_all, x_all = np.concatenate([t[0], h[0]]), np.concatenate([t[1], h[1]])
    cov = np.cov(x_all, y_all)  # ddof = 1
    theta = cov[0, 1] / cov[0, 0]
    adj_t = t[0] - theta * (t[1] - x_all.mean())
    adj_h = h[0] - theta * (h[1] - x_all.mean())
    nt, nh = len(adj_t), len(adj_h)
    raw_var_diff = t[0].var(ddof=1) / nt + h[0].var(ddof=1) / nh
    adj_var_diff = adj_t.var(ddof=1) / nt + adj_h.var(ddof=1) / nh
    return {
        "theta": theta,
        "pooled_x": x_all.mean(),
        "mean_t": adj_t.mean(),
        "mean_h": adj_h.mean(),
        "var_t": adj_t.var(ddof=1),
        "var_h": adj_h.var(ddof=1),
        "se_t": adj_t.std(ddof=1) / math.sqrt(nt),
        "se_h": adj_h.std(ddof=1) / math.sqrt(nh),
        "raw_var_t": t[0].var(ddof=1),
        "reduction_t": 1 - adj_t.var(ddof=1) / t[0].var(ddof=1),
        "diff": adj_t.mean() - adj_h.mean(),
        "se_diff": math.sqrt(adj_var_diff),
        "reduction": 1 - adj_var_diff / raw_var_diff,
    }


@pytest.mark.parametrize(
    ("generate", "proportion", "effect", "min_reduction"),
    [(_revenue, False, 3.0, 0.3), (_conversions, True, 0.01, 0.02)],
)
def test_aggregate_cuped_matches_unit_level(
    generate: Callable[[np.random.Generator, int, float], Arrays], proportion: bool, effect: float, min_reduction: float
) -> None:
    rng = np.random.default_rng(2013)
    t = generate(rng, 4000, effect)
    h = generate(rng, 900, 0.0)
    ref = _unit_level_reference(t, h)
    result = cuped_adjust(
        _arm(*t, proportion=proportion, path="treatment"), _arm(*h, proportion=proportion, path="holdout")
    )
    assert result.theta == pytest.approx(ref["theta"], rel=1e-10, abs=1e-12)
    assert result.pooled_covariate_mean == pytest.approx(ref["pooled_x"], rel=1e-10, abs=1e-12)
    assert result.treatment.mean == pytest.approx(ref["mean_t"], rel=1e-10, abs=1e-12)
    assert result.holdout.mean == pytest.approx(ref["mean_h"], rel=1e-10, abs=1e-12)
    assert result.treatment.variance == pytest.approx(ref["var_t"], rel=1e-10, abs=1e-12)
    assert result.holdout.variance == pytest.approx(ref["var_h"], rel=1e-10, abs=1e-12)
    assert result.treatment.std_error == pytest.approx(ref["se_t"], rel=1e-10, abs=1e-12)
    assert result.holdout.std_error == pytest.approx(ref["se_h"], rel=1e-10, abs=1e-12)
    assert result.treatment.raw_variance == pytest.approx(ref["raw_var_t"], rel=1e-10, abs=1e-12)
    assert result.treatment.variance_reduction == pytest.approx(ref["reduction_t"], rel=1e-10, abs=1e-12)
    assert result.variance_reduction == pytest.approx(ref["reduction"], rel=1e-10, abs=1e-12)
    assert result.variance_reduction is not None and result.variance_reduction > min_reduction
    assert not result.covariate_imbalanced

    analysis = analyze_channel(
        _arm(*t, proportion=proportion, path="treatment"), _arm(*h, proportion=proportion, path="holdout")
    )
    assert analysis.cuped is not None
    assert analysis.absolute_lift.estimate == pytest.approx(ref["diff"], rel=1e-10, abs=1e-12)
    assert analysis.absolute_lift.std_error == pytest.approx(ref["se_diff"], rel=1e-10, abs=1e-12)
    # The reported arms stay raw; the adjusted ones are in the CUPED block.
    assert analysis.treatment.mean == pytest.approx(t[0].mean(), rel=1e-12)


def test_variance_reduction_is_about_rho_squared_for_balanced_arms() -> None:
    """Deng et al. (2013): with θ = Cov/Var the variance shrinks by the factor 1 − ρ²."""
    rng = np.random.default_rng(7)
    n = 50_000
    x = rng.normal(size=2 * n)
    y = 0.6 * x + 0.8 * rng.normal(size=2 * n)  # ρ = 0.6
    result = cuped_adjust(
        _arm(y[:n], x[:n], proportion=False, path="t"), _arm(y[n:], x[n:], proportion=False, path="h")
    )
    assert result.variance_reduction == pytest.approx(np.corrcoef(x, y)[0, 1] ** 2, abs=0.005)
    assert result.theta == pytest.approx(0.6, abs=0.01)


def test_constant_covariate_means_no_adjustment() -> None:
    rng = np.random.default_rng(1)
    yt, yh = rng.normal(10, 2, size=300), rng.normal(10, 2, size=100)
    result = cuped_adjust(
        _arm(yt, np.full(300, 4.0), proportion=False, path="t"), _arm(yh, np.full(100, 4.0), proportion=False, path="h")
    )
    assert result.theta == 0.0
    assert result.variance_reduction == pytest.approx(0.0, abs=1e-12)
    assert result.treatment.mean == pytest.approx(yt.mean())
    assert result.covariate_balance_p_value is None
    assert any("same for every unit" in w for w in result.warnings)


def test_covariate_imbalance_is_flagged_and_sends_decision_to_investigate() -> None:
    rng = np.random.default_rng(5)
    t = _revenue(rng, 3000, 0.0)
    h = _revenue(rng, 1000, 0.0)
    t_shifted = (t[0], t[1] + 8.0)  # pre-period revenue higher in treatment: not a random split
    result = cuped_adjust(_arm(*t_shifted, proportion=False, path="t"), _arm(*h, proportion=False, path="h"))
    assert result.covariate_imbalanced
    assert result.covariate_balance_p_value is not None and result.covariate_balance_p_value < 0.001
    analysis = analyze_channel(_arm(*t_shifted, proportion=False, path="t"), _arm(*h, proportion=False, path="h"))
    assert analysis.decision.action == "investigate"
    assert analysis.data_problems


def test_covariate_on_one_arm_only_is_refused() -> None:
    rng = np.random.default_rng(9)
    t = _revenue(rng, 100, 0.0)
    h = _revenue(rng, 100, 0.0)
    treatment = _arm(*t, proportion=False, path="observations[meta].treatment")
    holdout = ArmSummary.from_mean(
        100, float(h[0].sum()), float((h[0] ** 2).sum()), field_path="observations[meta].holdout"
    )
    with pytest.raises(InvalidProblem) as excinfo:
        analyze_channel(treatment, holdout)
    assert excinfo.value.field == "observations[meta].holdout.covariate_sum"
    with pytest.raises(InvalidProblem) as excinfo:
        cuped_adjust(treatment, holdout)
    assert excinfo.value.field == "observations[meta].holdout.covariate_sum"
