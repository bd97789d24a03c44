"""Group-sequential boundaries by alpha spending, and the repeated p-value they imply.

Lan & DeMets (1983), "Discrete sequential boundaries for clinical trials", Biometrika 70(3), 659-663;
the recursive numerical integration of Armitage, McPherson & Rowe (1969) as set out in Jennison &
Turnbull (2000), *Group Sequential Methods with Applications to Clinical Trials*, chapter 19.

The canonical joint distribution: at looks with information fractions ``0 < t_1 < ... < t_K <= 1`` the
standardised statistics ``Z_k`` are jointly normal with ``corr(Z_j, Z_k) = sqrt(t_j / t_k)`` (the
statistic is a Brownian motion ``B(t) = Z sqrt(t)`` observed at the looks), which is what a cumulative
sum of weakly dependent daily effects approaches.  A two-sided test rejects at look ``k`` when
``|Z_k| >= c_k``; the boundaries are chosen so that the chance of first crossing at look ``k`` under no
effect is the alpha *spent* between ``t_{k-1}`` and ``t_k``:

    P(|Z_j| < c_j for j < k, |Z_k| >= c_k) = alpha(t_k) - alpha(t_{k-1}).

Spending functions (``alpha(0) = 0``, ``alpha(1) = alpha``):

* ``"obrien_fleming"``: each side spends Lan & DeMets' O'Brien-Fleming-type function at ``alpha/2``,
  ``alpha(t) = 2 (2 - 2 Phi(z_{1-alpha/4} / sqrt(t)))`` (the convention of DeMets & Lan 1994's table and
  of gsDesign's ``sfLDOF``) -- spends almost nothing early, so the last look keeps nearly the power of the
  fixed-horizon test;
* ``"pocock"``: ``alpha(t) = alpha log(1 + (e - 1) t)`` -- spends evenly, stops earlier, costs more power.

The boundaries of look ``k`` depend only on the looks up to ``k``, so looks need not be planned; a look
past the planned horizon (``t > 1``) spends nothing more.  Each look's nominal level
``alpha_k = 2 (1 - Phi(c_k))`` is what a fixed-horizon p-value at that look is compared with.  Inverting
at the nominal level gives the repeated confidence interval (Jennison & Turnbull 1989), and the smallest
``alpha`` at which some look up to ``k`` rejects is the repeated p-value: both hold their level however
many of the looks are taken.

Checked against published boundaries: O'Brien-Fleming-type spending, five equally spaced looks, two-sided
``alpha = 0.05``: ``c = 4.877, 3.357, 2.680, 2.290, 2.031`` (DeMets & Lan 1994, Stat. Med.
13, table 1; gsDesign's ``sfLDOF``); Pocock-type, the same looks: ``c = 2.438, 2.427, 2.410, 2.397, 2.386``.

>>> b = spending_boundaries([0.2, 0.4, 0.6, 0.8, 1.0], alpha=0.05)
>>> [round(c, 3) for c in b.critical_values]
[4.877, 3.357, 2.68, 2.29, 2.031]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import optimize, special, stats

from stats.errors import InvalidProblem

FloatArray = NDArray[np.float64]
SpendingFunction = Literal["obrien_fleming", "pocock"]

__all__ = [
    "Boundaries",
    "MonitoredPower",
    "SpendingFunction",
    "alpha_spent",
    "monitored_power",
    "repeated_p_value",
    "spending_boundaries",
]

# Points of the grid on which the continuation density is carried from look to look (odd, for Simpson).
_GRID_POINTS = 201
_SQRT_2PI = float(np.sqrt(2.0 * np.pi))


def alpha_spent(fraction: FloatArray | float, alpha: float, spending: SpendingFunction) -> FloatArray:
    """``alpha(t)`` of the spending function, ``t`` clipped to ``[0, 1]``."""
    t = np.clip(np.asarray(fraction, dtype=np.float64), 0.0, 1.0)
    if spending == "obrien_fleming":
        z = stats.norm.isf(alpha / 4.0)
        with np.errstate(divide="ignore"):
            spent = 4.0 * stats.norm.sf(z / np.sqrt(t))
        return np.asarray(np.where(t > 0.0, spent, 0.0), dtype=np.float64)
    if spending == "pocock":
        return np.asarray(alpha * np.log1p((np.e - 1.0) * t), dtype=np.float64)
    raise InvalidProblem("spending", "must be 'obrien_fleming' or 'pocock'")


@dataclass(frozen=True)
class Boundaries:
    """Two-sided critical values ``c_k`` (``inf`` where nothing is spent) and nominal levels per look."""

    fractions: tuple[float, ...]
    critical_values: tuple[float, ...]
    nominal_levels: tuple[float, ...]
    alpha: float
    spending: SpendingFunction


def _simpson_weights(n: int, step: float) -> FloatArray:
    weights = np.ones(n)
    weights[1:-1:2] = 4.0
    weights[2:-1:2] = 2.0
    return np.asarray(weights * step / 3.0, dtype=np.float64)


def _log_crossing(bound: float, grid: FloatArray, density: FloatArray, sd: float) -> float:
    """log P(|B_k| >= bound) for ``B_k = u + N(0, sd^2)`` with ``u`` carried by ``density`` (weights folded in)."""
    upper = special.log_ndtr((grid - bound) / sd)
    lower = special.log_ndtr(-(bound + grid) / sd)
    terms = np.logaddexp(upper, lower)
    positive = density > 0.0
    return float(special.logsumexp(terms[positive], b=density[positive]))


def _solve_boundary(increment: float, grid: FloatArray, density: FloatArray, sd: float, scale: float) -> float:
    """The critical value ``c`` whose crossing probability ``P(|B_k| >= c sqrt(t_k))`` is ``increment``."""
    if increment <= 0.0:
        return float("inf")
    log_target = float(np.log(increment))

    def excess(c: float) -> float:
        return _log_crossing(c * scale, grid, density, sd) - log_target

    if excess(0.0) <= 0.0:
        return 0.0
    high = 1.0
    while excess(high) > 0.0:
        high *= 2.0
    return float(optimize.brentq(excess, 0.0, high, xtol=1e-9, rtol=1e-10))


def spending_boundaries(
    fractions: Sequence[float] | FloatArray, *, alpha: float, spending: SpendingFunction = "obrien_fleming"
) -> Boundaries:
    """Critical values of looks at information ``fractions`` (increasing, positive) for two-sided ``alpha``.

    The density of ``B(t_k)`` on the continuation region is carried on a Simpson grid; the crossing
    probability is computed in log space, so the tiny spends of early O'Brien-Fleming looks (1e-25 at a
    look at 1/28 of the information) are solved as accurately as the late ones.
    """
    if not 0.0 < alpha < 1.0:
        raise InvalidProblem("alpha", "must be strictly between 0 and 1")
    t = np.asarray(fractions, dtype=np.float64)
    if t.ndim != 1 or t.size == 0 or not np.all(np.isfinite(t)) or t[0] <= 0.0 or np.any(np.diff(t) <= 0.0):
        raise InvalidProblem("fractions", "must be positive, finite and strictly increasing")
    spent = alpha_spent(t, alpha, spending)
    increments = np.diff(np.concatenate([[0.0], spent]))
    critical: list[float] = []
    grid = np.zeros(1)
    density = np.ones(1)  # B(0) = 0 with probability one
    previous = 0.0
    for k in range(t.size):
        sd = float(np.sqrt(t[k] - previous))
        scale = float(np.sqrt(t[k]))
        increment = float(increments[k])
        bound = _solve_boundary(increment, grid, density, sd, scale)
        critical.append(bound)
        # Carry the continuation density to this look: f_k(s) = sum_u f_{k-1}(u) phi((s - u) / sd) / sd.
        half = bound * scale if np.isfinite(bound) else scale * 12.0 + float(np.max(np.abs(grid)))
        new_grid = np.linspace(-half, half, _GRID_POINTS)
        kernel = np.exp(-0.5 * ((new_grid[:, None] - grid[None, :]) / sd) ** 2) / (sd * _SQRT_2PI)
        new_density = kernel @ density
        density = new_density * _simpson_weights(_GRID_POINTS, new_grid[1] - new_grid[0])
        grid = new_grid
        previous = float(t[k])
    levels = tuple(float(2.0 * stats.norm.sf(c)) for c in critical)
    return Boundaries(tuple(float(x) for x in t), tuple(critical), levels, float(alpha), spending)


def repeated_p_value(
    p_values: Sequence[float],
    fractions: Sequence[float],
    *,
    spending: SpendingFunction = "obrien_fleming",
    relative_tolerance: float = 1e-3,
) -> float:
    """The smallest ``alpha`` at which some look's fixed-horizon p-value falls at or below its nominal level.

    ``p_values[k]`` is look ``k``'s two-sided fixed-horizon p-value, ``fractions`` the looks' information
    fractions.  Rejecting when this is ``<= alpha`` is the group-sequential test itself, so it holds its
    level over all looks.  Found by bisection in ``log alpha`` (nominal levels grow with ``alpha``) to
    ``relative_tolerance``, rounding up (never smaller than the exact value).
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.size != len(fractions):
        raise InvalidProblem("p_values", "needs one p-value per look")

    def rejects(alpha: float) -> bool:
        levels = np.asarray(spending_boundaries(fractions, alpha=alpha, spending=spending).nominal_levels)
        return bool(np.any(p <= levels))

    high = 1.0 - 1e-12
    if not rejects(high):
        return 1.0
    # A look's nominal level never exceeds alpha, so no alpha below the smallest p-value rejects.
    low = max(float(np.min(p)), 1e-300)
    if rejects(low):
        return low
    while high / low > 1.0 + relative_tolerance:
        middle = float(np.sqrt(low * high))
        if rejects(middle):
            high = middle
        else:
            low = middle
    return high


@dataclass(frozen=True)
class MonitoredPower:
    """What monitoring costs and gains at one effect: power, the share stopped early, the expected looks.

    ``power`` is the chance some look crosses its boundary; ``stopped_early`` the chance one before the last
    does; ``expected_looks`` the mean number of looks until a decision (a test that never crosses runs all).
    """

    fixed_horizon_power: float
    power: float
    stopped_early: float
    expected_looks: float


def _first_crossings(fractions: FloatArray, critical: Sequence[float], drift: float) -> FloatArray:
    """P(first crossing at look k) for ``B(t) = drift t + W(t)`` and two-sided critical values ``c_k``."""
    grid = np.zeros(1)
    density = np.ones(1)
    previous = 0.0
    out = np.zeros(fractions.size)
    for k, bound in enumerate(critical):
        step = float(fractions[k] - previous)
        sd, shift, scale = float(np.sqrt(step)), drift * step, float(np.sqrt(fractions[k]))
        moved = grid + shift
        if np.isfinite(bound):
            b = bound * scale
            out[k] = float(np.dot(density, special.ndtr((moved - b) / sd) + special.ndtr((-b - moved) / sd)))
            half = b
        else:
            half = scale * 12.0 + abs(drift) * float(fractions[k]) + float(np.max(np.abs(grid)))
        new_grid = np.linspace(-half, half, _GRID_POINTS)
        kernel = np.exp(-0.5 * ((new_grid[:, None] - moved[None, :]) / sd) ** 2) / (sd * _SQRT_2PI)
        density = (kernel @ density) * _simpson_weights(_GRID_POINTS, new_grid[1] - new_grid[0])
        grid = new_grid
        previous = float(fractions[k])
    return out


def monitored_power(
    fixed_horizon_power: float, looks: int, *, alpha: float, spending: SpendingFunction = "obrien_fleming"
) -> MonitoredPower:
    """The power of ``looks`` equally spaced looks (the last at full information) for an effect that the
    fixed-horizon two-sided test at ``alpha`` detects with probability ``fixed_horizon_power``.

    The effect is the drift ``delta`` of the canonical process that gives the fixed test that power,
    ``Phi(delta - z) + Phi(-delta - z) = power`` with ``z = z_{1 - alpha/2}``; the looks' first-crossing
    probabilities under that drift follow from the same recursion as the boundaries (Jennison & Turnbull
    2000, section 19.2). A power below ``alpha`` (a test more conservative than its level) scales the
    no-effect plan's crossings by ``power / alpha``.
    """
    if not 0.0 < alpha < 1.0:
        raise InvalidProblem("alpha", "must be strictly between 0 and 1")
    if not 0.0 <= fixed_horizon_power <= 1.0:
        raise InvalidProblem("power", "must lie between 0 and 1")
    if looks < 1:
        raise InvalidProblem("looks", "must be at least 1")
    z = float(stats.norm.isf(alpha / 2.0))

    def fixed(delta: float) -> float:
        return float(special.ndtr(delta - z) + special.ndtr(-delta - z))

    target = min(max(fixed_horizon_power, alpha), 1.0 - 1e-12)
    delta = 0.0 if target <= alpha else float(optimize.brentq(lambda d: fixed(d) - target, 0.0, 40.0, xtol=1e-12))
    fractions = np.arange(1, looks + 1, dtype=np.float64) / looks
    bounds = spending_boundaries(fractions, alpha=alpha, spending=spending)
    first = _first_crossings(fractions, bounds.critical_values, delta)
    if fixed_horizon_power < alpha:
        # A test below its level (a conservative one) has no drift in the canonical form: the monitored plan
        # rejects in the same proportion at every look as the level-alpha test with no effect does.
        first = first * (fixed_horizon_power / alpha)
    power = float(np.clip(first.sum(), 0.0, 1.0))
    expected = float(np.dot(np.arange(1, looks + 1), first) + looks * (1.0 - power))
    return MonitoredPower(
        fixed_horizon_power=float(fixed_horizon_power),
        power=power,
        stopped_early=float(np.clip(first[:-1].sum(), 0.0, 1.0)),
        expected_looks=expected,
    )
