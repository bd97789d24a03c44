"""Seeded simulator of geo panels shaped like real market data, for the geo-design power tests.

A panel of ``N`` markets over ``T`` days is multiplicative::

    Y_it = L_i * exp(lambda_i f_t + a_i s_{t mod 7} + e_it)

* ``L_i`` market levels, lognormal (``log L_i ~ N(log 1000, level_sigma^2)``: a few big cities, many
  small ones);
* ``f_t`` a shared trend factor, stationary AR(1) (coefficient ``trend_ar`` ~ 0.9, marginal sd
  ``trend_sd``) that every market follows with its loading ``lambda_i ~ U(0.6, 1.4)``;
* ``s`` a fixed weekly pattern (weekend peak, mean 0) with market amplitudes ``a_i ~ U(0.6, 1.4)``;
* ``e_it`` idiosyncratic noise, stationary AR(1) with coefficient ``rho`` and marginal sd ``noise_sd``;
* optionally (:func:`history_and_futures`) a shared growth ``g t`` in the exponent (issue 23's trending
  markets), and noise added in KPI (``L_i (exp(...) + e_it)``) instead of multiplying the level.

The market structure (levels, loadings, amplitudes, which markets are treated) is drawn once per
design seed; every replication draws a fresh trend path and fresh noise for the history and the
test window alike.  The treated markets are the ``n_treated`` markets nearest the median in
(log level, loading, amplitude), so the treated average's effective loadings (``L lambda`` and
``L a``, which is what a synthetic control with unit fixed effects has to match) lie inside the
donors' range and the synthetic control can fit them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

# Monday..Sunday multiplicative weekly pattern (log scale), mean zero: a weekend peak.
WEEKLY_PATTERN = np.array([-0.06, -0.08, -0.05, -0.02, 0.04, 0.10, 0.07]) - np.mean(
    [-0.06, -0.08, -0.05, -0.02, 0.04, 0.10, 0.07]
)


@dataclass(frozen=True)
class Markets:
    """The fixed structure of one design's markets: levels, trend loadings, weekly amplitudes, treated set."""

    levels: FloatArray
    loadings: FloatArray
    amplitudes: FloatArray
    treated: IntArray
    donors: IntArray

    def effective_loadings(self) -> tuple[FloatArray, FloatArray]:
        """``(L lambda, L a)`` per market: how much of the trend and weekly pattern each market carries, in KPI."""
        return self.levels * self.loadings, self.levels * self.amplitudes


@dataclass(frozen=True)
class PanelModel:
    """Parameters of the simulated panels (see the module docstring)."""

    n_markets: int = 25
    n_treated: int = 1
    level_sigma: float = 0.8
    trend_ar: float = 0.9
    trend_sd: float = 0.10
    noise_ar: float = 0.3
    noise_sd: float = 0.05
    # Shared log-linear growth per day (every market's level drifts by this much a day).
    growth: float = 0.0
    # False: the noise is added in KPI (L_i * noise, constant over time) instead of multiplying the level.
    multiplicative_noise: bool = True

    def markets(self, seed: int) -> Markets:
        """Draw the market structure and pick the treated markets nearest the median (see the module docstring)."""
        rng = np.random.default_rng(seed)
        levels = np.exp(np.log(1000.0) + self.level_sigma * rng.standard_normal(self.n_markets))
        loadings = rng.uniform(0.6, 1.4, self.n_markets)
        amplitudes = rng.uniform(0.6, 1.4, self.n_markets)
        features = np.column_stack([np.log(levels), loadings, amplitudes])
        z = (features - np.median(features, axis=0)) / features.std(axis=0)
        order = np.argsort(np.sum(z * z, axis=1), kind="stable")
        treated = np.sort(order[: self.n_treated])
        donors = np.sort(order[self.n_treated :])
        return Markets(levels, loadings, amplitudes, treated, donors)

    def panel(self, markets: Markets, days: int, rng: np.random.Generator) -> FloatArray:
        """One fresh ``(N, days)`` panel: new trend path and new noise, the markets' structure kept."""
        trend = stationary_ar1(rng, self.trend_ar, self.trend_sd, (1, days))[0]
        noise = stationary_ar1(rng, self.noise_ar, self.noise_sd, (self.n_markets, days))
        weekly = WEEKLY_PATTERN[np.arange(days) % 7]
        log_y = markets.loadings[:, None] * trend[None, :] + markets.amplitudes[:, None] * weekly[None, :] + noise
        return np.asarray(markets.levels[:, None] * np.exp(log_y), dtype=np.float64)


def stationary_ar1(rng: np.random.Generator, coefficient: float, sd: float, shape: tuple[int, ...]) -> FloatArray:
    """Series of a stationary AR(1) ``x_t = c x_{t-1} + eta_t`` along the last axis of ``shape``, marginal sd
    ``sd`` (Gaussian)."""
    innovations = rng.standard_normal(shape) * sd * np.sqrt(1.0 - coefficient**2)
    out = np.empty(shape)
    out[..., 0] = rng.standard_normal(shape[:-1]) * sd
    for t in range(1, shape[-1]):
        out[..., t] = coefficient * out[..., t - 1] + innovations[..., t]
    return out


@dataclass(frozen=True)
class HistoryAndFutures:
    """One history ``(N, history)`` and ``futures`` fresh continuations of it ``(futures, N, duration)``."""

    history: FloatArray
    futures: FloatArray


def history_and_futures(
    model: PanelModel, markets: Markets, history: int, duration: int, futures: int, rng: np.random.Generator
) -> HistoryAndFutures:
    """A history and fresh futures that continue it: the trend and noise AR(1) recursions carry on from the
    history's last day with new innovations (the process a test run after the design meets)."""
    trend = stationary_ar1(rng, model.trend_ar, model.trend_sd, (1, history))[0]
    noise = stationary_ar1(rng, model.noise_ar, model.noise_sd, (model.n_markets, history))
    days = np.arange(history + duration)
    weekly = WEEKLY_PATTERN[days % 7]

    def levels(trend_path: FloatArray, noise_path: FloatArray, day: IntArray) -> FloatArray:
        log_y = (
            model.growth * day[None, :]
            + markets.loadings[:, None] * trend_path[None, :]
            + markets.amplitudes[:, None] * weekly[day][None, :]
        )
        if model.multiplicative_noise:
            return np.asarray(markets.levels[:, None] * np.exp(log_y + noise_path), dtype=np.float64)
        return np.asarray(markets.levels[:, None] * (np.exp(log_y) + noise_path), dtype=np.float64)

    past = levels(trend, noise, days[:history])
    ahead = np.empty((futures, model.n_markets, duration))
    for k in range(futures):
        trend_k = _continued_ar1(rng, model.trend_ar, model.trend_sd, trend[None, -1], duration)[0]
        noise_k = _continued_ar1(rng, model.noise_ar, model.noise_sd, noise[:, -1], duration)
        ahead[k] = levels(trend_k, noise_k, days[history:])
    return HistoryAndFutures(past, ahead)


def _continued_ar1(rng: np.random.Generator, coefficient: float, sd: float, last: FloatArray, days: int) -> FloatArray:
    """``days`` more steps of the stationary AR(1) rows whose last values are ``last``."""
    innovations = rng.standard_normal((last.size, days)) * sd * np.sqrt(1.0 - coefficient**2)
    out = np.empty((last.size, days))
    previous = last
    for t in range(days):
        previous = coefficient * previous + innovations[:, t]
        out[:, t] = previous
    return out
