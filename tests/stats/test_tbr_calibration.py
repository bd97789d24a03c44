"""Calibration of TBR's intervals and p-values on simulated geo panels (seeded).

Panels shaped like real geo data, built as in :mod:`simulations.geo_simulation` (its
:class:`PanelModel` parameters), vectorised over replications: ``N = 20`` markets with lognormal
levels, a shared AR(0.9) trend with market loadings, a weekly pattern with market amplitudes, and
AR(1) market noise with ``rho`` in {0, 0.25, 0.5}; 1, 3 or 10 treated markets (those nearest the
median layout); the market layout is redrawn in every replication. TBR regresses the treated
markets' total on the other markets' total over ``T0`` pre-period days and credits ``d`` test days:
a 12-week pre-period with a 4-week test, and an 8-week pre-period with a 2-week test.

* coverage: a +5% multiplicative effect on the treated markets over the test days (the truth is
  the realised ``0.05 * sum_test y(0)``); the default (``"conformal"``) 95% interval covers it within
  95% +- 2 pp;
* false positives: the same panels without the effect; the share with ``p_value <= 0.05`` (the CI
  excludes 0 exactly then) is at most 5% + 2 pp, two-sided and one-sided;
* Kerman's iid interval misses on the same panels (the issue this calibration guards);
* false positives on a long trending history (issue 23's process, :func:`simulations.geo_simulation.
  history_and_futures`: 0.3% a day of shared growth and noise proportional to the level, 365 pre-period
  days, a 15-day test, the seeds of ``bench/calibrate_geo_false_positives.py``): at most alpha + 1 point,
  the issue's target (the all-days residuals without a level scale rejected 15.0% there); and with 3
  treated markets on 90 pre-period days, where the window sums before their studentization rejected 8.4%.

``REPLICATIONS = 2000`` per scenario: the standard error of a rate near 0.95 is
``sqrt(0.05 * 0.95 / 2000) = 0.49`` pp, so a calibrated method (the test's discreteness makes the
conformal size ``floor(0.05 T) / T`` is 4.5% and 4.3% here) fails a +-2 pp bound with probability < 1e-4.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pytest
from scipy import stats

from simulations.geo_simulation import WEEKLY_PATTERN, FloatArray, PanelModel, history_and_futures, stationary_ar1
from stats.geo.tbr import estimate_tbr, tbr_conformal_batch, tbr_effect_batch

REPLICATIONS = 2000
N_MARKETS = 20
DESIGNS = ((84, 28), (56, 14))
LIFT = 0.05
LEVEL = 0.95
ALPHA = 1.0 - LEVEL
TOLERANCE = 0.02
TREATED = (1, 3, 10)
RHOS = (0.0, 0.25, 0.5)
SCENARIOS = [(design, n, rho) for design in DESIGNS for n in TREATED for rho in RHOS]


@dataclass(frozen=True, eq=False)
class Panels:
    """Treated and control daily totals ``(R, T)`` without effect, and the treated totals with it."""

    pre: slice
    post: slice
    control: FloatArray
    treated_null: FloatArray
    treated_lift: FloatArray
    truth: FloatArray


@functools.cache
def _panels(design: tuple[int, int], n_treated: int, rho: float, replications: int = REPLICATIONS) -> Panels:
    """``replications`` fresh panels (layout, trend and noise) of the model in the module docstring."""
    pre_days, test_days = design
    pre, post = slice(0, pre_days), slice(pre_days, pre_days + test_days)
    model = PanelModel(n_markets=N_MARKETS, n_treated=n_treated, noise_ar=rho)
    rng = np.random.default_rng(14_000 + 1000 * test_days + 100 * n_treated + round(100 * rho))
    days = pre_days + test_days
    shape = (replications, N_MARKETS)
    levels = np.exp(np.log(1000.0) + model.level_sigma * rng.standard_normal(shape))
    loadings = rng.uniform(0.6, 1.4, shape)
    amplitudes = rng.uniform(0.6, 1.4, shape)
    features = np.stack([np.log(levels), loadings, amplitudes], axis=-1)
    z = (features - np.median(features, axis=1, keepdims=True)) / features.std(axis=1, keepdims=True)
    order = np.argsort(np.sum(z * z, axis=-1), axis=1, kind="stable")
    treated = np.zeros(shape, dtype=bool)
    np.put_along_axis(treated, order[:, :n_treated], True, axis=1)
    trend = stationary_ar1(rng, model.trend_ar, model.trend_sd, (replications, 1, days))
    noise = stationary_ar1(rng, model.noise_ar, model.noise_sd, (replications, N_MARKETS, days))
    weekly = WEEKLY_PATTERN[np.arange(days) % 7]
    log_y = loadings[..., None] * trend + amplitudes[..., None] * weekly + noise
    y = levels[..., None] * np.exp(log_y)
    treated_null = np.einsum("rnt,rn->rt", y, treated.astype(np.float64))
    control = np.einsum("rnt,rn->rt", y, (~treated).astype(np.float64))
    treated_lift = treated_null.copy()
    treated_lift[:, post] *= 1.0 + LIFT
    truth = LIFT * treated_null[:, post].sum(axis=1)
    return Panels(pre, post, control, treated_null, treated_lift, truth)


@pytest.mark.parametrize(("design", "n_treated", "rho"), SCENARIOS)
def test_conformal_95_percent_interval_covers_the_effect_within_2pp(
    design: tuple[int, int], n_treated: int, rho: float
) -> None:
    panels = _panels(design, n_treated, rho)
    batch = tbr_conformal_batch(panels.treated_lift, panels.control, panels.pre, panels.post, LEVEL)
    covered = (batch.ci_low <= panels.truth) & (panels.truth <= batch.ci_high)
    coverage = float(np.mean(covered))
    assert abs(coverage - LEVEL) <= TOLERANCE, f"coverage {coverage:.4f}"


@pytest.mark.parametrize(("design", "n_treated", "rho"), SCENARIOS)
def test_conformal_false_positive_rate_is_at_most_alpha_plus_2pp(
    design: tuple[int, int], n_treated: int, rho: float
) -> None:
    panels = _panels(design, n_treated, rho)
    batch = tbr_conformal_batch(panels.treated_null, panels.control, panels.pre, panels.post, LEVEL)
    two_sided = float(np.mean(batch.p_value <= ALPHA))
    one_sided = float(np.mean(batch.one_sided_p_value <= ALPHA))
    assert two_sided <= ALPHA + TOLERANCE, f"two-sided false positives {two_sided:.4f}"
    assert one_sided <= ALPHA + TOLERANCE, f"one-sided false positives {one_sided:.4f}"
    # The interval excludes 0 exactly when the p-value is at most alpha (the same test inverted).
    excludes_zero = (batch.ci_low > 0) | (batch.ci_high < 0)
    np.testing.assert_array_equal(excludes_zero, batch.p_value <= ALPHA)


@pytest.mark.parametrize("design", DESIGNS)
def test_kerman_iid_interval_undercovers_on_autocorrelated_panels(design: tuple[int, int]) -> None:
    # The defect this calibration guards: with rho = 0.5 the iid interval covers about 75%.
    panels = _panels(design, 3, 0.5)
    delta, se, df = tbr_effect_batch(panels.treated_lift, panels.control, panels.pre, panels.post)
    q = stats.t.ppf(0.5 + LEVEL / 2, df)
    coverage = float(np.mean(np.abs(delta - panels.truth) <= q * se))
    assert coverage < 0.85


@pytest.mark.parametrize("rho", RHOS)
def test_reported_lag1_autocorrelation_tracks_the_noise_rho(rho: float) -> None:
    # With one treated market the residuals are mostly that market's AR(1) noise.
    panels = _panels(DESIGNS[0], 1, rho)
    batch = tbr_conformal_batch(panels.treated_null, panels.control, panels.pre, panels.post, LEVEL)
    assert abs(float(np.median(batch.residual_autocorrelation)) - rho) < 0.06


def test_batch_matches_estimate_tbr_on_sample_replications() -> None:
    panels = _panels(DESIGNS[0], 3, 0.25)
    batch = tbr_conformal_batch(panels.treated_lift[:5], panels.control[:5], panels.pre, panels.post, LEVEL)
    for row in range(5):
        single = estimate_tbr(panels.treated_lift[row], panels.control[row], panels.pre, panels.post, LEVEL)
        assert single.method == "conformal"
        assert single.incremental.estimate == pytest.approx(batch.estimate[row], rel=1e-12)
        assert single.incremental.ci_low == pytest.approx(batch.ci_low[row], rel=1e-12)
        assert single.incremental.ci_high == pytest.approx(batch.ci_high[row], rel=1e-12)
        assert single.p_value == pytest.approx(batch.p_value[row], rel=1e-12)
        assert single.one_sided.p_value == pytest.approx(batch.one_sided_p_value[row], rel=1e-12)
        assert single.fit.residual_autocorrelation == pytest.approx(batch.residual_autocorrelation[row], rel=1e-12)


def _issue_23_null_p_values(pre_days: int, n_treated: int) -> FloatArray:
    """The TBR p-values of bench/calibrate_geo_false_positives.py's row (seed 2300, 2,000 tests, growth 0.3%)."""
    tests, duration, seed = 2000, 15, 2300
    model = PanelModel(n_markets=21, n_treated=n_treated, noise_ar=0.3, noise_sd=0.15, growth=0.003)
    rng = np.random.default_rng(seed + pre_days)
    treated = np.empty((tests, pre_days + duration))
    control = np.empty((tests, pre_days + duration))
    for k in range(tests):
        markets = model.markets(seed * 1000 + pre_days * 10_000 + k)
        draw = history_and_futures(model, markets, pre_days, duration, 1, rng)
        panel = np.concatenate([draw.history, draw.futures[0]], axis=1)
        treated[k] = panel[markets.treated].sum(axis=0)
        control[k] = panel[markets.donors].sum(axis=0)
    post = slice(pre_days, pre_days + duration)
    return tbr_conformal_batch(treated, control, slice(0, pre_days), post, LEVEL).p_value


def test_false_positives_on_a_365_day_trending_history_are_at_most_alpha_plus_1_point() -> None:
    # The bench's 365-day row: measured 3.5% (4.5% before the window sums were studentized); the binomial SE
    # is 0.49 pp, so a test at its nominal 5% fails the 6% bound with probability < 0.03%.
    rate = float(np.mean(_issue_23_null_p_values(365, 1) <= ALPHA))
    assert rate <= ALPHA + 0.01, f"false positives {rate:.4f}"


def test_false_positives_with_three_treated_markets_on_90_trending_days_stay_near_alpha() -> None:
    # The row the studentization fixed (`--treated 3 --pre-days 90`): 8.4% before, 5.8% now. The bound is
    # alpha + 1 point plus two binomial standard errors (7.0%), as the monitoring tests assert.
    rate = float(np.mean(_issue_23_null_p_values(90, 3) <= ALPHA))
    assert rate <= ALPHA + 0.01 + 2.0 * np.sqrt(ALPHA * (1.0 - ALPHA) / 2000), f"false positives {rate:.4f}"
