"""Calibration by simulation: intervals cover the true lift at their nominal rate.

Thousands of experiments with a known lift are simulated at once (numpy, seeded) and run through the
same array kernels the scalar API calls (``difference_arrays``, ``log_ratio_arrays``, ``cuped_arrays``,
``mixture_sprt_arrays``); a cross-check confirms the scalar API gives identical numbers on a sample.

* fixed horizon: 95% intervals cover the truth 93.5–96.5% of the time (absolute lift and relative
  lift by the delta method), for proportions and means, with and without CUPED;
* zero lift: the false-positive rate is at most α + 1 pp;
* sequential: the confidence sequence covers the truth at all of 20 daily looks at least 95% of the time.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pytest

from stats.arm_statistics import ArmSummary, FloatArray, MetricKind, mean_variance_arrays, sample_variance_arrays
from stats.cuped import ArmAggregates, cuped_arrays
from stats.holdout_analysis import analyze_channel, analyze_sequential_channel
from stats.lift import difference_arrays, log_ratio_arrays
from stats.sequential import mixing_variance_for_horizon, mixture_sprt_arrays

ALPHA = 0.05
EXPERIMENTS = 4000
COVERAGE_RANGE = (0.935, 0.965)


@dataclass(frozen=True)
class Simulated:
    """Per-experiment sufficient statistics of both arms (arrays of length EXPERIMENTS)."""

    treatment: ArmAggregates
    holdout: ArmAggregates
    true_difference: float
    true_ratio: float


def _aggregate(y: FloatArray, x: FloatArray) -> ArmAggregates:
    n = np.full(y.shape[0], float(y.shape[1]))
    return ArmAggregates(n, y.sum(1), (y * y).sum(1), x.sum(1), (x * x).sum(1), (x * y).sum(1))


def _concat(parts: list[ArmAggregates]) -> ArmAggregates:
    return ArmAggregates(*(np.concatenate([getattr(p, f) for p in parts]) for f in ArmAggregates.__dataclass_fields__))


@functools.cache
def _simulate_units(kind: str, lift: float, seed: int, nt: int = 1500, nh: int = 500) -> Simulated:
    """Unit-level data with a pre-period covariate, generated in chunks of experiments.

    mean (revenue):      x = 20·Exp(1), y = 0.7x + 10·Exp(1) (+ lift); E[y_H] = 24, skewed like revenue.
    proportion:          x ~ Bernoulli(0.2) (converted before), y ~ Bernoulli(0.02 + 0.4x (+ lift));
                         E[y_H] = 0.1.
    """
    rng = np.random.default_rng(seed)
    t_parts, h_parts = [], []
    for _ in range(EXPERIMENTS // 1000):
        arms = []
        for n, effect in ((nt, lift), (nh, 0.0)):
            if kind == "mean":
                x = 20.0 * rng.standard_exponential(size=(1000, n))
                y = 0.7 * x + 10.0 * rng.standard_exponential(size=(1000, n)) + effect
            else:
                x = (rng.random((1000, n)) < 0.2).astype(np.float64)
                y = (rng.random((1000, n)) < 0.02 + 0.4 * x + effect).astype(np.float64)
            arms.append(_aggregate(y, x))
        t_parts.append(arms[0])
        h_parts.append(arms[1])
    base = 24.0 if kind == "mean" else 0.1
    return Simulated(_concat(t_parts), _concat(h_parts), lift, (base + lift) / base)


def _shift_treatment(sim: Simulated, delta: float) -> Simulated:
    """The same experiments with every treated outcome moved by delta (sufficient statistics only)."""
    t = sim.treatment
    shifted = ArmAggregates(
        t.units,
        t.sum_y + delta * t.units,
        t.sum_y_squares + 2.0 * delta * t.sum_y + delta * delta * t.units,
        t.sum_x,
        t.sum_x_squares,
        t.cross_sum + delta * t.sum_x,
    )
    base = 24.0
    truth = sim.true_difference + delta
    return Simulated(shifted, sim.holdout, truth, (base + truth) / base)


def _raw(sim: Simulated, kind: str) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Arm means and variances of the means without CUPED."""
    t, h = sim.treatment, sim.holdout
    k: MetricKind = "proportion" if kind == "proportion" else "mean"
    return (
        t.sum_y / t.units,
        mean_variance_arrays(k, t.units, t.sum_y, t.sum_y_squares),
        h.sum_y / h.units,
        mean_variance_arrays(k, h.units, h.sum_y, h.sum_y_squares),
    )


def _cuped(sim: Simulated) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    c = cuped_arrays(sim.treatment, sim.holdout)
    return (
        c.treatment_mean,
        c.treatment_variance / sim.treatment.units,
        c.holdout_mean,
        c.holdout_variance / sim.holdout.units,
    )


def _coverage(low: FloatArray, high: FloatArray, truth: float) -> float:
    assert np.all(np.isfinite(low)) and np.all(np.isfinite(high))
    return float(np.mean((low <= truth) & (truth <= high)))


def _check_coverage(moments: tuple[FloatArray, FloatArray, FloatArray, FloatArray], sim: Simulated) -> None:
    diff = difference_arrays(*moments, ALPHA)
    ratio = log_ratio_arrays(*moments, ALPHA)
    absolute = _coverage(diff.ci_low, diff.ci_high, sim.true_difference)
    relative = _coverage(ratio.ci_low, ratio.ci_high, sim.true_ratio - 1.0)
    lo, hi = COVERAGE_RANGE
    assert lo <= absolute <= hi, f"absolute-lift coverage {absolute:.4f}"
    assert lo <= relative <= hi, f"relative-lift coverage {relative:.4f}"


def _false_positive_rate(moments: tuple[FloatArray, FloatArray, FloatArray, FloatArray]) -> tuple[float, float]:
    diff = difference_arrays(*moments, ALPHA)
    ratio = log_ratio_arrays(*moments, ALPHA)
    return float(np.mean(diff.p_value < ALPHA)), float(np.mean(ratio.p_value < ALPHA))


# --- Fixed horizon -----------------------------------------------------------------------------


def test_proportions_without_covariate_cover_the_truth() -> None:
    """A realistic 90/10 holdout on a 3% conversion rate with a 10% relative lift."""
    rng = np.random.default_rng(101)
    nt, nh, ph, pt = 45_000, 5_000, 0.03, 0.033
    ct = rng.binomial(nt, pt, size=EXPERIMENTS).astype(np.float64)
    ch = rng.binomial(nh, ph, size=EXPERIMENTS).astype(np.float64)
    t_n, h_n = np.full(EXPERIMENTS, float(nt)), np.full(EXPERIMENTS, float(nh))
    moments = (
        ct / nt,
        mean_variance_arrays("proportion", t_n, ct, ct),
        ch / nh,
        mean_variance_arrays("proportion", h_n, ch, ch),
    )
    diff = difference_arrays(*moments, ALPHA)
    ratio = log_ratio_arrays(*moments, ALPHA)
    lo, hi = COVERAGE_RANGE
    assert lo <= _coverage(diff.ci_low, diff.ci_high, pt - ph) <= hi
    assert lo <= _coverage(ratio.ci_low, ratio.ci_high, pt / ph - 1.0) <= hi

    # Zero lift: false positives at most α + 1 pp.
    ct0 = rng.binomial(nt, ph, size=EXPERIMENTS).astype(np.float64)
    null = (
        ct0 / nt,
        mean_variance_arrays("proportion", t_n, ct0, ct0),
        moments[2],
        moments[3],
    )
    fpr_abs, fpr_rel = _false_positive_rate(null)
    assert fpr_abs <= ALPHA + 0.01 and fpr_rel <= ALPHA + 0.01

    # The scalar API computes the same numbers as the kernels.
    for i in range(25):
        analysis = analyze_channel(
            ArmSummary.from_proportion(nt, int(ct[i])), ArmSummary.from_proportion(nh, int(ch[i]))
        )
        assert analysis.absolute_lift.ci_low == pytest.approx(diff.ci_low[i], rel=1e-12, abs=1e-15)
        assert analysis.p_value == pytest.approx(diff.p_value[i], rel=1e-12, abs=1e-15)
        assert analysis.relative_lift is not None
        assert analysis.relative_lift.ci_high == pytest.approx(ratio.ci_high[i], rel=1e-12)


@pytest.mark.parametrize(("kind", "lift"), [("mean", 1.5), ("proportion", 0.02)])
def test_unit_level_simulation_covers_the_truth_with_and_without_cuped(kind: str, lift: float) -> None:
    sim = _simulate_units(kind, lift, seed=202 if kind == "mean" else 203)
    _check_coverage(_raw(sim, kind), sim)
    _check_coverage(_cuped(sim), sim)

    # CUPED narrows the interval; the scalar API matches the kernels (first experiments).
    raw_se = difference_arrays(*_raw(sim, kind), ALPHA).std_error
    cuped_diff = difference_arrays(*_cuped(sim), ALPHA)
    assert np.median(cuped_diff.std_error / raw_se) < 0.9
    t, h = sim.treatment, sim.holdout
    for i in range(10):
        arms = []
        for arm in (t, h):
            arms.append(
                ArmSummary(
                    kind="mean" if kind == "mean" else "proportion",
                    units=int(arm.units[i]),
                    total=float(arm.sum_y[i]),
                    sum_squares=float(arm.sum_y_squares[i]),
                    covariate_sum=float(arm.sum_x[i]),
                    covariate_sum_squares=float(arm.sum_x_squares[i]),
                    cross_sum=float(arm.cross_sum[i]),
                )
            )
        analysis = analyze_channel(arms[0], arms[1])
        assert analysis.absolute_lift.ci_low == pytest.approx(cuped_diff.ci_low[i], rel=1e-12, abs=1e-15)
        assert analysis.absolute_lift.p_value == pytest.approx(cuped_diff.p_value[i], rel=1e-12, abs=1e-15)


def test_zero_lift_false_positive_rate_with_and_without_cuped() -> None:
    # Revenue: the experiments above with the lift taken out of every treated unit; conversions: new ones.
    for kind, sim in (
        ("mean", _shift_treatment(_simulate_units("mean", 1.5, seed=202), -1.5)),
        ("proportion", _simulate_units("proportion", 0.0, seed=304)),
    ):
        assert sim.true_difference == 0.0
        for moments in (_raw(sim, kind), _cuped(sim)):
            fpr_abs, fpr_rel = _false_positive_rate(moments)
            assert fpr_abs <= ALPHA + 0.01, f"{kind}: absolute false-positive rate {fpr_abs:.4f}"
            assert fpr_rel <= ALPHA + 0.01, f"{kind}: relative false-positive rate {fpr_rel:.4f}"


# --- Sequential --------------------------------------------------------------------------------

LOOKS = 20
SEQUENTIAL_EXPERIMENTS = 2000


def _sequential_coverage(
    estimates: FloatArray, variances: FloatArray, truth: float, final_true_variance: float
) -> float:
    """Share of experiments whose confidence sequence contains the truth at every one of the looks."""
    tau2 = mixing_variance_for_horizon(final_true_variance, alpha=ALPHA)
    result = mixture_sprt_arrays(estimates, variances, tau2, ALPHA)
    assert np.all(np.isfinite(result.half_width))
    inside = np.abs(estimates - truth) <= result.half_width  # shape (experiments, looks)
    return float(np.mean(inside.all(axis=1)))


def test_sequential_proportions_cover_at_every_daily_look() -> None:
    rng = np.random.default_rng(404)
    daily_t, daily_h, pt, ph = 2_000, 500, 0.055, 0.05
    ct = rng.binomial(daily_t, pt, size=(SEQUENTIAL_EXPERIMENTS, LOOKS)).cumsum(axis=1).astype(np.float64)
    ch = rng.binomial(daily_h, ph, size=(SEQUENTIAL_EXPERIMENTS, LOOKS)).cumsum(axis=1).astype(np.float64)
    nt = daily_t * np.arange(1, LOOKS + 1, dtype=np.float64)
    nh = daily_h * np.arange(1, LOOKS + 1, dtype=np.float64)
    estimates = ct / nt - ch / nh
    variances = mean_variance_arrays("proportion", nt, ct, ct) + mean_variance_arrays("proportion", nh, ch, ch)
    final = pt * (1 - pt) / nt[-1] + ph * (1 - ph) / nh[-1]
    coverage = _sequential_coverage(estimates, variances, pt - ph, final)
    assert coverage >= 0.95, f"sequential coverage {coverage:.4f}"

    # The scalar API gives the same interval at a look.
    t = ArmSummary.from_proportion(int(nt[4]), int(ct[0, 4]))
    h = ArmSummary.from_proportion(int(nh[4]), int(ch[0, 4]))
    seq = analyze_sequential_channel(t, h, mixing_variance=mixing_variance_for_horizon(final))
    tau2 = mixing_variance_for_horizon(final)
    half = mixture_sprt_arrays(estimates[0, 4:5], variances[0, 4:5], tau2, ALPHA).half_width[0]
    assert seq.absolute_lift.ci_high == pytest.approx(estimates[0, 4] + half, rel=1e-12)


def test_sequential_means_cover_at_every_daily_look() -> None:
    rng = np.random.default_rng(505)
    daily_t, daily_h, lift = 150, 50, 2.0
    shape, scale = 2.0, 10.0  # revenue per user: mean 20, variance 200
    sums = {arm: np.zeros((SEQUENTIAL_EXPERIMENTS, LOOKS)) for arm in ("t", "h")}
    squares = {arm: np.zeros((SEQUENTIAL_EXPERIMENTS, LOOKS)) for arm in ("t", "h")}
    for day in range(LOOKS):
        for arm, n, effect in (("t", daily_t, lift), ("h", daily_h, 0.0)):
            y = rng.gamma(shape, scale, size=(SEQUENTIAL_EXPERIMENTS, n)) + effect
            sums[arm][:, day] = y.sum(axis=1)
            squares[arm][:, day] = (y * y).sum(axis=1)
    nt = daily_t * np.arange(1, LOOKS + 1, dtype=np.float64)
    nh = daily_h * np.arange(1, LOOKS + 1, dtype=np.float64)
    st, sh = sums["t"].cumsum(axis=1), sums["h"].cumsum(axis=1)
    qt, qh = squares["t"].cumsum(axis=1), squares["h"].cumsum(axis=1)
    estimates = st / nt - sh / nh
    variances = sample_variance_arrays(nt, st, qt) / nt + sample_variance_arrays(nh, sh, qh) / nh
    final = shape * scale**2 * (1 / nt[-1] + 1 / nh[-1])
    coverage = _sequential_coverage(estimates, variances, lift, final)
    assert coverage >= 0.95, f"sequential coverage {coverage:.4f}"
