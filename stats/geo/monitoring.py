"""Interim geo results valid at a look every day: the conformal tests made group-sequential.

A running geo test is read every morning.  Each read's fixed-horizon p-value is valid for that day
alone; read daily over a 28-day test it reaches "significant" on about a quarter of tests with no
effect at all.  Here every look's test is the conformal test the final result uses (the synthetic
control's block-permutation test of a constant effect on the refit over the pre-period and the test days
so far, statistic ``|sum of residuals|`` on the panel deflated by the donors' level; TBR's moving-block
test of each window's errors predicted from the fit on the days outside it, over the window's control
level, studentized), and the looks are tied together by Lan & DeMets' alpha spending (:mod:`stats.group_sequential`):

* look ``j`` (``j`` test days observed of ``K`` planned) has information fraction ``t_j = j / K``: the
  variance of a sum of ``j`` weakly dependent daily effects grows in proportion to ``j``;
* the boundaries are those of a look on *every* day ``1..j`` (``t = 1/K, 2/K, ...``), so the guarantee
  holds for a marketer who reads the test daily and, a fortiori, for one who reads it less often;
* look ``j`` rejects when its conformal p-value is at or below that look's nominal level; the test stops
  at the first look that does (``stop: effect detected``).  No futility stop is offered: a futility rule
  would have to be fixed before the test and costs power, and a test without a detectable effect simply
  runs to its planned end, where the final boundary decides;
* the reported p-value is the repeated p-value (the smallest alpha at which some look so far rejects),
  and the interval is the repeated confidence interval of the current look: the conformal test inverted
  at the look's nominal level (Jennison & Turnbull 1989, JRSS B 51(3)).  Both hold their level at every
  look; the fixed-horizon p-value and interval are reported beside them, labelled as such.

The joint null over looks follows from the canonical Brownian form only approximately (each look refits
on more days, and permutation p-values are discrete), so the false-positive rate of the whole procedure
is checked by simulation (``tests/stats/test_geo_monitoring.py``; ``bench/bench_geo_monitoring.py``).
O'Brien-Fleming-type spending makes early looks demand overwhelming evidence, and with ``T0 + j``
placements a block-permutation p-value cannot fall below ``1 / (T0 + j)``: the first days of a test
cannot stop it, which is as it should be.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from stats.errors import InvalidProblem
from stats.geo.conformal import ConformalTest, NullRefit, donor_level, invert_test
from stats.geo.tbr import estimate_tbr
from stats.geo.tbr_conformal import held_out_window_sums, two_sided_p_values
from stats.group_sequential import SpendingFunction, spending_boundaries

FloatArray = NDArray[np.float64]
Decision = Literal["continue", "stop: effect detected", "stop: planned end"]

__all__ = ["Look", "MonitoredTest", "daily_boundaries", "monitor_looks", "scm_look_p_values", "tbr_look_p_values"]


@dataclass(frozen=True)
class Look:
    """One daily look: its fixed-horizon p-value, the nominal level it is held to, and whether it crossed."""

    day: int
    p_value_fixed_horizon: float
    nominal_level: float
    critical_value: float
    crossed: bool


@dataclass(frozen=True)
class MonitoredTest:
    """The group-sequential reading of a test after ``days_observed`` of ``planned_days`` test days.

    ``decision_day`` is the first look that crossed its boundary (``None`` if none has);
    ``nominal_level`` the current look's level, at which the repeated interval is built.  The repeated
    p-value is :func:`stats.group_sequential.repeated_p_value` of the looks' p-values.
    """

    planned_days: int
    days_observed: int
    looks: tuple[Look, ...]
    decision: Decision
    decision_day: int | None
    nominal_level: float
    alpha: float
    spending: SpendingFunction


@lru_cache(maxsize=512)
def _boundaries(planned_days: int, looks: int, alpha: float, spending: SpendingFunction) -> tuple[float, ...]:
    fractions = np.arange(1, looks + 1, dtype=np.float64) / planned_days
    return spending_boundaries(fractions, alpha=alpha, spending=spending).nominal_levels


def daily_boundaries(
    planned_days: int, days_observed: int, *, alpha: float, spending: SpendingFunction = "obrien_fleming"
) -> tuple[float, ...]:
    """Nominal two-sided levels of looks on days ``1..days_observed`` of a ``planned_days``-day test.

    Days past the planned end spend nothing more (their level is 0: the final look at day ``K`` is the
    last that can reject).
    """
    if planned_days < 1:
        raise InvalidProblem("test_period", "must plan at least one test day")
    if days_observed < 1:
        raise InvalidProblem("test_period", "has no test day observed yet")
    within = min(days_observed, planned_days)
    levels = _boundaries(planned_days, within, float(alpha), spending)
    return levels + (0.0,) * (days_observed - within)


def monitor_looks(
    p_values: Sequence[float],
    planned_days: int,
    *,
    alpha: float,
    spending: SpendingFunction = "obrien_fleming",
) -> MonitoredTest:
    """Hold each daily look's fixed-horizon p-value (``p_values[j - 1]`` for day ``j``) to its boundary."""
    days = len(p_values)
    levels = daily_boundaries(planned_days, days, alpha=alpha, spending=spending)
    fractions = np.arange(1, min(days, planned_days) + 1, dtype=np.float64) / planned_days
    critical = spending_boundaries(fractions, alpha=alpha, spending=spending).critical_values if fractions.size else ()
    critical = tuple(critical) + (float("inf"),) * (days - len(critical))
    looks = tuple(
        Look(day=j + 1, p_value_fixed_horizon=float(p), nominal_level=lvl, critical_value=c, crossed=bool(p <= lvl))
        for j, (p, lvl, c) in enumerate(zip(p_values, levels, critical, strict=True))
    )
    crossed = [look.day for look in looks if look.crossed]
    decision_day = crossed[0] if crossed else None
    decision: Decision
    if decision_day is not None:
        decision = "stop: effect detected"
    elif days >= planned_days:
        decision = "stop: planned end"
    else:
        decision = "continue"
    return MonitoredTest(
        planned_days=planned_days,
        days_observed=days,
        looks=looks,
        decision=decision,
        decision_day=decision_day,
        nominal_level=levels[-1],
        alpha=float(alpha),
        spending=spending,
    )


def _check_panel(treated: FloatArray, other: FloatArray, pre_days: int) -> tuple[FloatArray, FloatArray, int]:
    a = np.asarray(treated, dtype=np.float64)
    b = np.asarray(other, dtype=np.float64)
    if a.ndim != 1 or b.shape[0] != a.size:
        raise InvalidProblem("treated", "needs one value per day, as the controls have")
    days = a.size - pre_days
    if pre_days < 2 or days < 1:
        raise InvalidProblem("test_period", "needs at least two pre-period days and one test day observed")
    return a, b, days


def scm_look_p_values(
    treated: FloatArray,
    donors: FloatArray,
    pre_days: int,
    *,
    fixed_effects: bool = True,
    ridge_lambda: float | None = None,
) -> list[float]:
    """The synthetic control's fixed-horizon block-permutation p-value of no effect at every daily look.

    ``treated`` ``(T0 + d,)`` and ``donors`` ``(T0 + d, J)`` hold the pre-period then the ``d`` test days
    observed; look ``j`` refits on the pre-period and the first ``j`` test days, as the result on that
    day did (statistic ``|sum of residuals|`` on the panel deflated by its donors' level, all ``T0 + j`` cyclic
    placements).
    """
    a, b, days = _check_panel(treated, donors, pre_days)
    p_values: list[float] = []
    for j in range(1, days + 1):
        rows = pre_days + j
        post = np.zeros(rows, dtype=bool)
        post[pre_days:] = True
        model = NullRefit(
            a[:rows],
            b[:rows],
            post,
            fixed_effects=fixed_effects,
            ridge_lambda=ridge_lambda,
            level=donor_level(b[:rows]),
        )
        test = ConformalTest(model, post, statistic="mean", n_permutations=0)
        p_values.append(float(test.p_values(np.zeros(1), "block")[0]))
    return p_values


def scm_repeated_interval(
    treated: FloatArray,
    donors: FloatArray,
    pre_days: int,
    level: float,
    *,
    estimate: float,
    scale: float,
    fixed_effects: bool = True,
    ridge_lambda: float | None = None,
) -> tuple[float | None, float | None]:
    """The current look's conformal interval inverted at its nominal ``level`` (``None``: unbounded side)."""
    a, b, _ = _check_panel(treated, donors, pre_days)
    if level <= 0.0:
        return None, None
    post = np.zeros(a.size, dtype=bool)
    post[pre_days:] = True
    model = NullRefit(a, b, post, fixed_effects=fixed_effects, ridge_lambda=ridge_lambda, level=donor_level(b))
    test = ConformalTest(model, post, statistic="mean", n_permutations=0)
    inversion = invert_test(lambda th: test.p_values(th, "block"), level, estimate, scale)
    return inversion.low, inversion.high


def tbr_look_p_values(treated: FloatArray, control: FloatArray, pre_days: int) -> list[float]:
    """TBR's fixed-horizon moving-block p-value of no effect at every daily look.

    ``treated`` and ``control`` are ``(T0 + d,)`` (the treated and control totals); look ``j`` is the
    test :func:`stats.geo.tbr.estimate_tbr` runs on the pre-period and the first ``j`` test days: each
    window's errors predicted from the fit on the days outside it, scaled by the window's control level and
    studentized (:func:`stats.geo.tbr_conformal.held_out_window_sums`), ``p = #{k : S_k >= S_0} / (T0 + j)``.
    """
    a, b, days = _check_panel(treated, control, pre_days)
    p_values: list[float] = []
    for j in range(1, days + 1):
        rows = pre_days + j
        sums_a, sums_b = held_out_window_sums(a[None, :rows], b[None, :rows], j)
        p_values.append(float(two_sided_p_values(sums_a, sums_b)[0]))
    return p_values


def tbr_repeated_interval(
    treated: FloatArray, control: FloatArray, pre_days: int, level: float
) -> tuple[float | None, float | None]:
    """TBR's current-look interval for the incremental KPI so far (summed over the test days), inverted at ``level``.

    It is :func:`stats.geo.tbr.estimate_tbr`'s conformal interval at confidence ``1 - level``: ``None`` on a side
    the test leaves unbounded, and both ``None`` when no interval around the estimate could be built
    (its ``ci_status``).  The p-value is a multiple of ``1 / T`` (``T = T0 + d`` windows), so a level below
    ``1 / T`` -- the first looks' (about 1e-17 on day 1 of 15, where ``1 - level`` is 1 in floating point) --
    accepts every effect: unbounded on both sides.
    """
    a, b, _ = _check_panel(treated, control, pre_days)
    if level * a.size < 1.0:
        return None, None
    result = estimate_tbr(a, b, slice(0, pre_days), slice(pre_days, a.size), 1.0 - level)
    return result.incremental.ci_low, result.incremental.ci_high
