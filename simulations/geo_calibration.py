"""Calibration of every geo method on simulated panels: coverage of 95% intervals and false positives.

The panels are those of ``tests/stats/test_tbr_calibration.py`` (the model of
:mod:`simulations.geo_simulation`): ``N = 20`` markets with lognormal levels, a shared AR(0.9) trend with
market loadings, a weekly pattern with market amplitudes, AR(1) market noise with ``rho`` in {0, 0.25,
0.5}; the layout is redrawn in every replication; a 12-week pre-period and a 4-week test.  Each
replication is analysed twice, without an effect (false positive: ``p <= alpha``, i.e. the interval
excludes 0) and with one (coverage of the true effect):

* ``synthetic_control`` / ``augmented_synthetic_control`` -- the ``n_treated`` markets nearest the median
  layout are treated and lifted by 5% over the test; the truth is the realised ATT of the treated average,
  ``0.05 * mean_test y0``; the analysis is what :func:`stats.geo.lift.estimate_geo_lift` runs (fit on the
  pre-period, ridge penalty cross-validated there for ASCM, then :func:`stats.geo.conformal.conformal_inference`
  with ``|sum u|`` and block permutations), minus the pointwise bands and placebo it does not need;
* ``tbr`` -- the same panels through :func:`stats.geo.tbr.tbr_conformal_batch` (the default interval);
* ``trimmed_match`` -- ``n_treated`` matched pairs: the 20 markets sorted by level and paired with their
  neighbour, ``n_treated`` pairs drawn, a fair coin picks the treated geo of each; the treated geo spends
  ``x_i = 0.05 * L_i * d`` more over the test and gains ``theta x_i`` with iROAS ``theta = 1`` (the model of
  Chen & Au); :func:`stats.geo.trimmed_match.trimmed_match` on the pairs' test-period sums.  It needs at least
  3 pairs: one treated market is not a trimmed-match design.

Replications are seeded per (method, scenario); the same seed gives the same panels to SC, ASCM and TBR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simulations.geo_simulation import WEEKLY_PATTERN, FloatArray, PanelModel, stationary_ar1
from stats.geo.augmented_synthetic_control import fit_augmented_synthetic_control
from stats.geo.conformal import conformal_inference
from stats.geo.tbr import tbr_conformal_batch
from stats.geo.trimmed_match import trimmed_match

N_MARKETS = 20
PRE_DAYS, TEST_DAYS = 84, 28
LIFT = 0.05
IROAS = 1.0
LEVEL = 0.95
ALPHA = 1.0 - LEVEL
METHODS = ("synthetic_control", "augmented_synthetic_control", "tbr", "trimmed_match")
TREATED = (1, 3, 10)
RHOS = (0.0, 0.25, 0.5)
SCENARIOS = [(n, rho) for n in TREATED for rho in RHOS]


@dataclass(frozen=True)
class Calibration:
    """Counts over ``replications``: intervals covering the truth (with the effect), rejections without it."""

    method: str
    n_treated: int
    rho: float
    replications: int
    covered: int
    false_positives: int

    @property
    def coverage(self) -> float:
        return self.covered / self.replications

    @property
    def false_positive_rate(self) -> float:
        return self.false_positives / self.replications

    def standard_error(self, rate: float) -> float:
        """Binomial standard error of a rate near ``rate`` over these replications."""
        return math.sqrt(rate * (1.0 - rate) / self.replications)


def simulate(replications: int, rho: float, seed: int) -> tuple[FloatArray, FloatArray]:
    """``(panels (R, N, T), levels (R, N))``: fresh layouts, trends and noise (vectorised over replications)."""
    model = PanelModel(n_markets=N_MARKETS, noise_ar=rho)
    rng = np.random.default_rng(seed)
    days = PRE_DAYS + TEST_DAYS
    shape = (replications, N_MARKETS)
    levels = np.exp(np.log(1000.0) + model.level_sigma * rng.standard_normal(shape))
    loadings = rng.uniform(0.6, 1.4, shape)
    amplitudes = rng.uniform(0.6, 1.4, shape)
    trend = stationary_ar1(rng, model.trend_ar, model.trend_sd, (replications, 1, days))
    noise = stationary_ar1(rng, model.noise_ar, model.noise_sd, (replications, N_MARKETS, days))
    weekly = WEEKLY_PATTERN[np.arange(days) % 7]
    log_y = loadings[..., None] * trend + amplitudes[..., None] * weekly + noise
    features = np.stack([np.log(levels), loadings, amplitudes], axis=-1)
    z = (features - np.median(features, axis=1, keepdims=True)) / features.std(axis=1, keepdims=True)
    order = np.argsort(np.sum(z * z, axis=-1), axis=1, kind="stable")  # nearest the median layout first
    panels = levels[..., None] * np.exp(log_y)
    return np.take_along_axis(panels, order[..., None], axis=1), np.take_along_axis(levels, order, axis=1)


def _seed(method: str, n_treated: int, rho: float) -> int:
    shared = 0 if method in ("synthetic_control", "augmented_synthetic_control", "tbr") else 1
    return 140_000 + 10_000 * shared + 100 * n_treated + round(100 * rho)


def analyse_synthetic_control(panel: FloatArray, n_treated: int, ridge: bool) -> tuple[float, float, float, float]:
    """``(p-value without effect, interval low, high with the effect, true ATT)`` for one panel ``(N, T)``."""
    post = np.zeros(PRE_DAYS + TEST_DAYS, dtype=bool)
    post[PRE_DAYS:] = True
    y0 = panel[:n_treated].mean(axis=0)
    donors = panel[n_treated:].T
    ridge_lambda = None
    if ridge:  # chosen on the pre-period, as estimate_geo_lift does; the effect does not touch it
        ridge_lambda = fit_augmented_synthetic_control(y0[:PRE_DAYS], donors[:PRE_DAYS]).ridge_lambda
    null = conformal_inference(
        y0, donors, post, alpha=ALPHA, ridge_lambda=ridge_lambda, pointwise=False, n_permutations=1
    )
    lifted = y0 * np.where(post, 1.0 + LIFT, 1.0)
    result = conformal_inference(
        lifted, donors, post, alpha=ALPHA, ridge_lambda=ridge_lambda, pointwise=False, n_permutations=1
    )
    low = -math.inf if result.ci_low is None else result.ci_low
    high = math.inf if result.ci_high is None else result.ci_high
    return null.p_value, low, high, LIFT * float(y0[post].mean())


def _synthetic_control(panels: FloatArray, n_treated: int, ridge: bool) -> tuple[int, int]:
    covered = false_positives = 0
    for panel in panels:
        p_value, low, high, truth = analyse_synthetic_control(panel, n_treated, ridge)
        false_positives += int(p_value <= ALPHA)
        covered += int(low <= truth <= high)
    return covered, false_positives


def _tbr(panels: FloatArray, n_treated: int) -> tuple[int, int]:
    pre, post = slice(0, PRE_DAYS), slice(PRE_DAYS, PRE_DAYS + TEST_DAYS)
    treated = panels[:, :n_treated].sum(axis=1)
    control = panels[:, n_treated:].sum(axis=1)
    null = tbr_conformal_batch(treated, control, pre, post, LEVEL)
    lifted = treated.copy()
    lifted[:, post] *= 1.0 + LIFT
    truth = LIFT * treated[:, post].sum(axis=1)
    batch = tbr_conformal_batch(lifted, control, pre, post, LEVEL)
    covered = (batch.ci_low <= truth) & (truth <= batch.ci_high)
    return int(covered.sum()), int(np.sum(null.p_value <= ALPHA))


def _trimmed_match(panels: FloatArray, levels: FloatArray, n_pairs: int, seed: int) -> tuple[int, int]:
    rng = np.random.default_rng(seed + 1)
    covered = false_positives = 0
    for panel, level in zip(panels, levels, strict=True):
        by_level = np.argsort(level)
        pairs = by_level.reshape(-1, 2)[rng.choice(N_MARKETS // 2, n_pairs, replace=False)]
        flip = rng.random(n_pairs) < 0.5
        treated = np.where(flip, pairs[:, 0], pairs[:, 1])
        control = np.where(flip, pairs[:, 1], pairs[:, 0])
        sums = panel[:, PRE_DAYS:].sum(axis=1)
        spend = LIFT * level[treated] * TEST_DAYS
        response = sums[treated] - sums[control]
        null = trimmed_match(response, spend, LEVEL)
        false_positives += int(null.ci_low > 0.0 or null.ci_high < 0.0)
        result = trimmed_match(response + IROAS * spend, spend, LEVEL)
        covered += int(result.ci_low <= IROAS <= result.ci_high)
    return covered, false_positives


def calibrate(method: str, n_treated: int, rho: float, replications: int) -> Calibration:
    """Coverage and false positives of ``method`` in one scenario (see the module docstring)."""
    seed = _seed(method, n_treated, rho)
    panels, levels = simulate(replications, rho, seed)
    if method == "tbr":
        covered, false_positives = _tbr(panels, n_treated)
    elif method == "trimmed_match":
        if n_treated < 3:
            raise ValueError("trimmed match needs at least 3 pairs")
        covered, false_positives = _trimmed_match(panels, levels, n_treated, seed)
    else:
        covered, false_positives = _synthetic_control(panels, n_treated, method == "augmented_synthetic_control")
    return Calibration(method, n_treated, rho, replications, covered, false_positives)
