"""Predicted power against the results' detection rate on fresh futures of simulated histories (issue 23).

For each of ``histories`` histories (:func:`simulations.geo_simulation.history_and_futures`; a new market
layout per history, seeded), the design's power is predicted by :func:`stats.geo.power.duration_power`;
then ``futures`` fresh futures continue the history, each effect is injected (``y (1 + e)`` on the test
days) and the results' synthetic-control test (:mod:`stats.geo.conformal`: ``NullRefit`` on every day of the
panel deflated by the donors' level, ``|sum u|`` over the test days, cyclic block permutations; what
``GET /v1/experiments/{id}/results`` reports as ``p_value``) runs on the history and the future, counting
``p <= alpha``.

Targets (the issue's): per effect, ``|mean predicted - realized| <= 0.03 + 2 SE``; by bin of predicted
power (0-20%, ..., 80-100%), ``<= 0.08 + 2 SE``.  Standard errors count the futures of one history as one
cluster (per effect) or one design (per bin).  Used by ``tests/stats/test_geo_power.py`` (CI size) and
``bench/calibrate_geo_power.py`` (full size).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from simulations.geo_simulation import FloatArray, PanelModel, history_and_futures
from stats.geo.conformal import ConformalTest, NullRefit, donor_level
from stats.geo.power import duration_power

BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0 + 1e-9)
EFFECT_TOLERANCE = 0.03
BIN_TOLERANCE = 0.08


@dataclass(frozen=True)
class Agreement:
    """One row of the comparison: mean predicted power, realized rate, its standard error, count."""

    label: str
    count: int
    predicted: float
    realized: float
    standard_error: float
    tolerance: float

    @property
    def within(self) -> bool:
        return abs(self.predicted - self.realized) <= self.tolerance + 2.0 * self.standard_error


@dataclass(frozen=True)
class PowerCalibration:
    """``predicted`` ``(H, E)`` and ``realized`` ``(H, F, E)`` (1.0 where the results' test rejected)."""

    effects: tuple[float, ...]
    predicted: FloatArray
    realized: FloatArray

    def by_effect(self) -> list[Agreement]:
        rows = []
        for i, effect in enumerate(self.effects):
            per_history = self.realized[:, :, i].mean(axis=1)
            se = float(per_history.std(ddof=1) / math.sqrt(per_history.size))
            rows.append(
                Agreement(
                    f"{effect:g}",
                    per_history.size,
                    float(self.predicted[:, i].mean()),
                    float(per_history.mean()),
                    se,
                    EFFECT_TOLERANCE,
                )
            )
        return rows

    def by_bin(self) -> list[Agreement]:
        predicted = self.predicted.reshape(-1)
        rates = self.realized.mean(axis=1).reshape(-1)  # (H * E,), histories-major like predicted
        rows = []
        for lo, hi in itertools.pairwise(BINS):
            inside = (predicted >= lo) & (predicted < hi)
            n = int(inside.sum())
            if n < 2:
                continue
            se = float(rates[inside].std(ddof=1) / math.sqrt(n))
            label = f"{100 * lo:.0f}-{100 * min(hi, 1.0):.0f}%"
            rows.append(
                Agreement(label, n, float(predicted[inside].mean()), float(rates[inside].mean()), se, BIN_TOLERANCE)
            )
        return rows


def results_p_value(y: FloatArray, donors: FloatArray, post: NDArray[np.bool_]) -> float:
    """The block p-value of no effect the results report (``statistic="mean"``, panel deflated by the donors' level)."""
    model = NullRefit(y, donors, post, level=donor_level(donors))
    test = ConformalTest(model, post, statistic="mean", n_permutations=0)
    return float(test.p_values(np.zeros(1), "block")[0])


def calibrate_power(
    model: PanelModel,
    *,
    history_days: int,
    duration: int,
    effects: tuple[float, ...],
    histories: int,
    futures: int,
    lookback_windows: int,
    alpha: float,
    seed: int,
) -> PowerCalibration:
    """Predicted power and realized detection (see the module docstring)."""
    rng = np.random.default_rng(seed)
    predicted = np.zeros((histories, len(effects)))
    realized = np.zeros((histories, futures, len(effects)))
    post = np.arange(history_days + duration) >= history_days
    for h in range(histories):
        markets = model.markets(seed * 1000 + h)
        draw = history_and_futures(model, markets, history_days, duration, futures, rng)
        treated, donors = draw.history[markets.treated], draw.history[markets.donors].T
        power = duration_power(treated, donors, duration, effects, lookback_windows=lookback_windows, alpha=alpha)
        predicted[h] = power.power
        for k in range(futures):
            panel = np.concatenate([draw.history, draw.futures[k]], axis=1)
            y = panel[markets.treated].mean(axis=0)
            b = panel[markets.donors].T
            for i, effect in enumerate(effects):
                realized[h, k, i] = results_p_value(y * (1.0 + effect * post), b, post) <= alpha
    return PowerCalibration(tuple(effects), predicted, realized)
