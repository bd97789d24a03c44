"""Trimmed match: robust iROAS for randomized matched-pair geo experiments.

Chen & Au (2022), "Robust causal inference for incremental return on ad spend with randomized paired
geo experiments", Annals of Applied Statistics 16(1), 1-20 (arXiv:1908.02922), as Google's
``trimmed_match`` package implements it (C++ core ``trimmed_match/core``, Python ``estimator.py``).
Written here from the definitions; the package's published numbers are the tests' oracles.

Data: for each of ``n`` geo pairs the treatment-minus-control difference over the test period of the
response, ``y_i``, and of the ad spend, ``x_i``. Under the paper's model ``y_i = theta x_i + e_i``
where the pair residual ``e_i`` (the difference of the two geos' uninfluenced responses) is symmetric
about 0 by the randomization within pairs, and ``theta`` is the iROAS.

Point estimate. For a trim rate ``lambda`` let ``m = ceil(lambda n)`` pairs be trimmed at each end and
``T(theta)`` be the trimmed mean of ``e_i(theta) = y_i - theta x_i`` (the ``n - 2m`` middle order
statistics). ``theta_hat`` solves ``T(theta) = 0``. ``T`` is continuous and piecewise linear with
kinks only where two residuals swap order, ``theta_ij = (y_i - y_j) / (x_i - x_j)``; between kinks
the untrimmed set ``B`` is fixed, so each segment's candidate root is ``sum_B y / sum_B x`` and it
counts if it falls inside its segment. When several roots exist the one with the smallest trimmed
symmetric norm ``mean_{m <= k < n-m} |e_(k) + e_(n-1-k)|`` is taken (the smallest such root on a
tie). ``lambda = 0`` gives the ratio of sums ``sum y / sum x``.

Standard error (the paper's eqn. 8.2 with the residuals at ``theta_hat`` sorted, ``e_(m..n-1-m)`` the
body and ``x_[k]`` the spend of the pair at rank ``k``)::

    se = sqrt(m e_(m)^2 + m e_(n-1-m)^2 + sum_{k=m}^{n-1-m} e_(k)^2) / |sum_{k=m}^{n-1-m} x_[k]|.

Trim rate. Unless fixed, the candidates are ``lambda = k / n`` for ``k = 0, 1, ...`` up to
``min(max_trim_rate, 1/2 - 1/n)``; each gets ``theta_hat`` and ``se``, and the *smallest* rate whose
``se`` is at most ``(1 + 0.25 / sqrt(n))`` times the minimum ``se`` is chosen (the package's rule:
near-minimal standard error, preferring less trimming). A candidate with no root is skipped. With 10
pairs or fewer the cap allows at most 2 trimmed per side (none with 3 pairs).

Confidence interval (the paper's eqns. 5.6-5.7): invert the studentized trimmed-mean test,
``{theta : |t(theta)| <= q}`` where, with ``h = n - 2m`` untrimmed pairs,
``t = (sum_B e / h) / sqrt(SSW / (h (h - 1)))`` (:func:`studentized_trimmed_mean`) and ``SSW`` the sum
of squared deviations of the winsorized residuals (the ``m`` trimmed at each end replaced by
``e_(m)``, ``e_(n-1-m)``) from their mean. The critical value ``q`` (:func:`critical_value`) is, by
default, the ``1/2 + level/2`` quantile of Student's t with ``h - 1`` degrees of freedom, the reference
distribution of the Tukey-McLaughlin trimmed t (Tukey & McLaughlin 1963; Yuen 1974). Google's package
uses the normal quantile ``Phi^{-1}(1/2 + level/2)`` (``quantile="normal"`` reproduces it, and its
published numbers). Why the t: the normal quantile is the large-sample form and under-covers with few
pairs. On panels shaped like real geo data (``simulations/geo_calibration.py``, 2,000 replications per
scenario) the package's 95% interval covered 86-88% with 3 pairs and 91% with 10 (false positives
12-14% and 9% at alpha 5%); with the t quantile it covers 96-97% with 10 pairs (false positives 3-4%)
and 98% with 3 (2%). With no trimming the t test is exact for normal pair noise and conservative at
the usual levels for any independent pair noise symmetric about 0 (Efron 1969, "Student's t-test under
symmetry conditions", JASA 64), which is what the within-pair randomization gives at the true
``theta``; pairs of unequal noise (geos of different sizes) are what makes it conservative here. The
data-driven trim rate is not otherwise accounted for: on those panels (at most 2 trimmed per side)
the selection pulls nothing visible, but with heavy-tailed pair noise it still does (40 pairs, t(3)
noise: a 90% interval covers 86% with the chosen rate, 90.5% with a rate fixed in advance; see
``tests/stats/test_trimmed_match.py``). With 3 pairs the 95% test (t with 2 degrees of freedom)
accepts an unbounded set of ``theta`` in about 80% of those panels -- the data cannot bound iROAS --
and the reported interval is then the fallback below.

An exact randomization test (the ``2^n`` within-pair sign flips of ``e_i(theta)``, valid by
construction for a randomized paired design) was considered and not chosen: with 3 pairs its 8
assignments make the smallest attainable two-sided p-value ``2/8``, so at any usual level it rejects
nothing and every interval would be the whole line; at 10 pairs it would be exact but costs ``2^n``
statistics per ``theta`` and departs from the reference at every size.

On each segment between kinks both sides are quadratic in ``theta``, so the accepted set is found
exactly; the interval reported is its hull, searched within ``|theta| <= 1e10``. As the package does,
when that hull is wider than ``1e6 * se`` (the test accepts essentially every ``theta``) the interval
becomes ``theta_hat -+ 3 q se`` and ``ci_is_fallback`` says so. :func:`trimmed_mean_test_p_value` is
the test's p-value (``theta`` is in the accepted set exactly when that of ``e(theta)`` exceeds
``1 - level``); :func:`trimmed_match_p_value` is a p-value of ``theta = 0`` that never contradicts the
reported interval (that test's, or the interval's own inversion where the two disagree).

Incremental response: ``theta_hat * sum x`` with the interval's ends times ``sum x`` (swapped when
``sum x < 0``), as the package's post analysis reports it; :func:`relative_lift` divides it by the
counterfactual total (observed minus incremental). The trimmed pairs are the ``m`` pairs with
the smallest and the ``m`` with the largest residuals at ``theta_hat`` (ties by pair order).

Cost: the ``n (n - 1) / 2`` kinks are visited in vectorised blocks, ``O(n^3 log n)`` work and memory
bounded per block; 57 pairs take a few milliseconds. Everything is numpy/scipy; nothing here knows
about HTTP or storage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

from stats.errors import InvalidProblem
from stats.intervals import Interval
from stats.magnitude import check_magnitude

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
Quantile = Literal["student_t", "normal"]
PValueMethod = Literal["t_test", "interval_inversion"]

__all__ = [
    "DEFAULT_MAX_TRIM_RATE",
    "PValueMethod",
    "Quantile",
    "TrimCandidate",
    "TrimmedMatchResult",
    "critical_value",
    "relative_lift",
    "studentized_trimmed_mean",
    "trimmed_match",
    "trimmed_match_p_value",
    "trimmed_mean_roots",
    "trimmed_mean_test_p_value",
]

# The package's estimator default (``estimator.TrimmedMatch``, its post-analysis): the data-driven trim rate is
# chosen up to 25% (its design evaluates candidates up to 10%: stats.geo.pair_design.DESIGN_MAX_TRIM_RATE).
DEFAULT_MAX_TRIM_RATE = 0.25
# The package's limits: spend deltas this close to 0 everywhere leave iROAS undefined; the automatic
# trim rate never exceeds 0.30; the interval is searched within +-1e10 and replaced by the estimate
# -+ 3 critical values times the standard error when wider than 1e6 standard errors.
_MIN_SPEND_GAP = 1e-10
_MAX_AUTO_TRIM_RATE = 0.30
_IROAS_BOUND = 1e10
_EXTREME_CI_WIDTH = 1e6
_FALLBACK_MULTIPLIER = 3.0
# Kinks closer than this (relative) are one kink; a segment's root may sit this far outside it.
_KINK_RTOL = 1e-12
_ROOT_RTOL = 1e-9
# Residual matrix entries per vectorised block of segments.
_BLOCK_ELEMENTS = 1 << 20


@dataclass(frozen=True)
class TrimCandidate:
    """One trim rate tried: ``trim_rate = trimmed_per_side / n_pairs``, its estimate and standard error."""

    trim_rate: float
    trimmed_per_side: int
    estimate: float
    std_error: float


@dataclass(frozen=True, eq=False)
class TrimmedMatchResult:
    """Outcome of :func:`trimmed_match` (formulas in the module docstring).

    * ``estimate``, ``ci_low``, ``ci_high``: iROAS ``theta_hat`` and its two-sided interval at
      ``confidence_level`` from the inverted studentized trimmed-mean test (``ci_is_fallback``: the
      test accepted an unbounded set and the interval is ``theta_hat -+ 3 q std_error``, ``q`` the
      critical value).
    * ``std_error``: eqn. 8.2 at the chosen trim rate.
    * ``trim_rate``: the rate used (chosen from the data unless fixed), ``trimmed_per_side = ceil(trim_rate
      * n_pairs)``; ``trimmed_pairs``: indices (input order, ascending) of the ``2 * trimmed_per_side``
      pairs left out of the trimmed mean at ``theta_hat``.
    * ``residuals``: ``y_i - theta_hat x_i`` per pair (read-only).
    * ``incremental_cost``: ``sum x``; ``incremental_response``: ``theta_hat * sum x`` with its interval.
    * ``candidates``: every trim rate evaluated, in increasing order (one entry for a fixed rate).
    """

    estimate: float
    ci_low: float
    ci_high: float
    std_error: float
    confidence_level: float
    trim_rate: float
    trimmed_per_side: int
    trimmed_pairs: tuple[int, ...]
    residuals: FloatArray
    incremental_cost: float
    incremental_response: Interval
    candidates: tuple[TrimCandidate, ...]
    ci_is_fallback: bool
    n_pairs: int


def _as_pairs(values: npt.ArrayLike, name: str) -> FloatArray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidProblem(name, "must be a sequence of numbers, one per pair") from exc
    if array.ndim != 1:
        raise InvalidProblem(name, "must be a one-dimensional sequence, one value per pair")
    if not np.all(np.isfinite(array)):
        raise InvalidProblem(name, "must be finite for every pair (no NaN or infinity)")
    return array


def trimmed_per_side(rate: float, n: int) -> int:
    # ceil(rate * n), immune to the rounding of rates such as k / n.
    return math.ceil(rate * n - 1e-9)


def _segment_points(y: FloatArray, x: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Ends ``lo``, ``hi`` and an inner point of each segment of ``[-1e10, 1e10]`` between kinks."""
    i, j = np.triu_indices(y.size, k=1)
    dx = x[i] - x[j]
    moving = dx != 0.0
    with np.errstate(over="ignore"):  # a subnormal dx: the kink is beyond the bound, dropped below
        kinks = np.sort((y[i] - y[j])[moving] / dx[moving])
    kinks = kinks[np.abs(kinks) < _IROAS_BOUND]
    if kinks.size:
        gap = np.diff(kinks)
        keep = np.concatenate(([True], gap > _KINK_RTOL * np.maximum(np.abs(kinks[1:]), 1.0)))
        kinks = kinks[keep]
    edges = np.concatenate(([-_IROAS_BOUND], kinks, [_IROAS_BOUND]))
    lo, hi = edges[:-1], edges[1:]
    inner = 0.5 * (lo + hi)
    if kinks.size:
        # Near the finite kinks rather than at +-5e9, where y - theta x loses y's digits.
        inner[0] = max(kinks[0] - (1.0 + abs(kinks[0])), 0.5 * (kinks[0] - _IROAS_BOUND))
        inner[-1] = min(kinks[-1] + (1.0 + abs(kinks[-1])), 0.5 * (kinks[-1] + _IROAS_BOUND))
    return lo, hi, inner


def _accepted_hull(a: FloatArray, b: FloatArray, c: FloatArray, lo: FloatArray, hi: FloatArray) -> tuple[float, float]:
    """Hull of ``{theta in [lo_k, hi_k] : a_k theta^2 - 2 b_k theta + c_k >= 0}`` over segments ``k``."""
    f_lo = (a * lo - 2.0 * b) * lo + c
    f_hi = (a * hi - 2.0 * b) * hi + c
    disc = b * b - a * c
    disc = np.where(np.abs(disc) <= 64 * np.finfo(float).eps * np.maximum(b * b, np.abs(a * c)), 0.0, disc)
    root_disc = np.sqrt(np.maximum(disc, 0.0))
    # Roots where the quadratic turns negative (down) and positive (up): (b -+ sqrt(disc)) / a,
    # in the cancellation-free form; c / (2 b) for a linear piece.
    q = b + np.where(b >= 0.0, root_disc, -root_disc)
    with np.errstate(divide="ignore", invalid="ignore"):
        big, small = q / a, c / q
        linear = 0.5 * c / b
    quadratic = a != 0.0
    down = np.where(quadratic, np.where(b >= 0.0, small, big), linear)
    up = np.where(quadratic, np.where(b >= 0.0, big, small), linear)
    down = np.where(q == 0.0, b / np.where(quadratic, a, 1.0), down)
    up = np.where(q == 0.0, b / np.where(quadratic, a, 1.0), up)

    ok_lo, ok_hi = f_lo >= 0.0, f_hi >= 0.0
    inside = (a < 0.0) & (disc >= 0.0) & (b >= a * hi) & (b <= a * lo)  # vertex b / a within [lo, hi]
    left = np.where(ok_lo, lo, np.where(ok_hi, up, np.where(inside, up, np.nan)))
    right = np.where(ok_hi, hi, np.where(ok_lo, down, np.where(inside, down, np.nan)))
    left = np.clip(left, lo, hi)
    right = np.clip(right, lo, hi)
    if np.all(np.isnan(left)):
        return math.nan, math.nan
    return float(np.nanmin(left)), float(np.nanmax(right))


def _sweep(
    y: FloatArray, x: FloatArray, trims: list[int], critical: list[float] | None
) -> tuple[list[FloatArray], list[tuple[float, float]]]:
    """For each number trimmed per side: all roots of the trimmed-mean equation and (given each trim's
    critical value of ``|t|``) the hull of the accepted set."""
    n = y.size
    lo, hi, inner = _segment_points(y, x)
    roots: list[list[FloatArray]] = [[] for _ in trims]
    hull = [(math.inf, -math.inf) for _ in trims]
    block = max(1, _BLOCK_ELEMENTS // n)
    for start in range(0, lo.size, block):
        sl = slice(start, start + block)
        seg_lo, seg_hi, point = lo[sl], hi[sl], inner[sl]
        order = np.argsort(y[None, :] - point[:, None] * x[None, :], axis=1, kind="stable")
        ys, xs = y[order], x[order]
        zero = np.zeros((order.shape[0], 1))
        cy = np.hstack((zero, np.cumsum(ys, axis=1)))
        cx = np.hstack((zero, np.cumsum(xs, axis=1)))
        cyy = np.hstack((zero, np.cumsum(ys * ys, axis=1)))
        cxx = np.hstack((zero, np.cumsum(xs * xs, axis=1)))
        cxy = np.hstack((zero, np.cumsum(xs * ys, axis=1)))
        for t, m in enumerate(trims):
            top = n - m  # body ranks m .. n - m - 1
            y1, x1 = cy[:, top] - cy[:, m], cx[:, top] - cx[:, m]
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                theta = y1 / x1
            tol = _ROOT_RTOL * np.maximum(np.abs(theta), 1.0)
            # A subnormal x1 sends theta past the double range: no root there.
            valid = np.isfinite(theta) & (theta >= seg_lo - tol) & (theta <= seg_hi + tol)
            roots[t].append(theta[valid])
            if critical is None:
                continue

            h, z = n - 2 * m, critical[t]
            big_h = z * z * h / (h - 1)
            yl, yr, xl, xr = ys[:, m], ys[:, top - 1], xs[:, m], xs[:, top - 1]
            y1w, x1w = y1 + m * (yl + yr), x1 + m * (xl + xr)
            y2 = cyy[:, top] - cyy[:, m] + m * (yl * yl + yr * yr)
            x2 = cxx[:, top] - cxx[:, m] + m * (xl * xl + xr * xr)
            xy = cxy[:, top] - cxy[:, m] + m * (xl * yl + xr * yr)
            # H * SSW(theta) - (sum_B e(theta))^2 = a theta^2 - 2 b theta + c >= 0 accepts theta.
            a = big_h * (x2 - x1w * x1w / n) - x1 * x1
            b = big_h * (xy - x1w * y1w / n) - x1 * y1
            c = big_h * (y2 - y1w * y1w / n) - y1 * y1
            low, high = _accepted_hull(a, b, c, seg_lo, seg_hi)
            if not math.isnan(low):
                hull[t] = (min(hull[t][0], low), max(hull[t][1], high))
    return [np.concatenate(r) for r in roots], hull


def _symmetric_norm(residuals: FloatArray, m: int) -> FloatArray:
    """Trimmed symmetric norm of each row: mean over the body of ``|e_(k) + e_(n-1-k)|``."""
    ordered = np.sort(residuals, axis=-1)
    n = ordered.shape[-1]
    body = ordered[..., m : n - m]
    return np.asarray(np.mean(np.abs(body + body[..., ::-1]), axis=-1), dtype=np.float64)


def _distinct(roots: FloatArray) -> FloatArray:
    roots = np.sort(roots)
    if roots.size == 0:
        return roots
    keep = np.concatenate(([True], np.diff(roots) > _ROOT_RTOL * np.maximum(np.abs(roots[1:]), 1.0)))
    return roots[keep]


def _pick_root(roots: FloatArray, y: FloatArray, x: FloatArray, m: int) -> float:
    if m == 0:
        return float(np.sum(y) / np.sum(x))
    roots = _distinct(roots)
    if roots.size == 1:
        return float(roots[0])
    norms = _symmetric_norm(y[None, :] - roots[:, None] * x[None, :], m)
    return float(roots[int(np.argmin(norms))])


def _std_error(residuals: FloatArray, x: FloatArray, m: int) -> float:
    order = np.argsort(residuals, kind="stable")
    e, xs = residuals[order], x[order]
    n = e.size
    body = slice(m, n - m)
    squares = float(np.sum(e[body] ** 2)) + m * (e[m] ** 2 + e[n - 1 - m] ** 2)
    spend = abs(float(np.sum(xs[body])))
    return math.sqrt(squares) / spend if spend > 0.0 else math.inf


def _checked_pairs(response_delta: npt.ArrayLike, spend_delta: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    y = _as_pairs(response_delta, "response_delta")
    x = _as_pairs(spend_delta, "spend_delta")
    check_magnitude(y, "response_delta")
    check_magnitude(x, "spend_delta")
    if x.size != y.size:
        raise InvalidProblem("spend_delta", f"has {x.size} pairs but response_delta has {y.size}; they must match")
    if y.size < 3:
        raise InvalidProblem("response_delta", f"needs at least 3 pairs, got {y.size}")
    if np.max(np.abs(x)) < _MIN_SPEND_GAP:
        raise InvalidProblem("spend_delta", "is zero (within 1e-10) for every pair, so iROAS is undefined")
    return y, x


def critical_value(
    confidence_level: float, n_pairs: int, trimmed_per_side: int, quantile: Quantile = "student_t"
) -> float:
    """Two-sided critical value of the studentized trimmed mean at ``confidence_level``.

    ``"student_t"``: the ``1/2 + level/2`` quantile of Student's t with ``h - 1`` degrees of freedom,
    ``h = n_pairs - 2 trimmed_per_side`` the untrimmed pairs (Tukey & McLaughlin 1963, Yuen 1974);
    ``"normal"``: ``Phi^{-1}(1/2 + level/2)``, what Google's package uses (its large-sample form).
    """
    h = n_pairs - 2 * trimmed_per_side
    # The upper tail isf((1 - c) / 2), not ppf(0.5 + 0.5c): 0.5 + 0.5c rounds to 1 (an infinite critical
    # value) for c near 1.
    tail = 0.5 * (1.0 - confidence_level)
    if quantile == "normal":
        return float(stats.norm.isf(tail))
    return float(stats.t.isf(tail, h - 1))


def studentized_trimmed_mean(residuals: npt.ArrayLike, trimmed_per_side: int) -> float:
    """Chen & Au's studentized trimmed mean (eqn. 5.6) of the pair residuals ``e_i(theta)``.

    ``(sum_B e / h) / sqrt(SSW / (h (h - 1)))`` with ``B`` the ``h = n - 2m`` middle order statistics and
    ``SSW`` the sum of squared deviations of the winsorized residuals from their mean; ``+-inf`` (or 0)
    when the winsorized residuals do not vary. ``trimmed_per_side = m`` must leave at least 2 pairs.
    """
    e = np.sort(np.asarray(residuals, dtype=np.float64))
    n, m = e.size, trimmed_per_side
    h = n - 2 * m
    if h < 2:
        raise InvalidProblem("trim_rate", f"trims {m} of {n} pairs at each end; at least 2 pairs must remain")
    body = e[m : n - m]
    winsorized = np.concatenate((np.full(m, e[m]), body, np.full(m, e[n - 1 - m])))
    ssw = float(np.sum((winsorized - winsorized.mean()) ** 2))
    mean = float(body.mean())
    if ssw <= 0.0:
        return 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    return mean / math.sqrt(ssw / (h * (h - 1)))


def trimmed_mean_test_p_value(
    residuals: npt.ArrayLike, trimmed_per_side: int, quantile: Quantile = "student_t"
) -> float:
    """Two-sided p-value of the studentized trimmed-mean test that the residuals are centred at 0.

    The test :func:`trimmed_match` inverts for its interval: ``theta`` is accepted at level ``1 - alpha``
    exactly when the p-value of ``e_i(theta) = y_i - theta x_i`` exceeds ``alpha``. Student's t with
    ``h - 1`` degrees of freedom (or the normal, ``quantile="normal"``), as :func:`critical_value`.
    """
    values = np.asarray(residuals, dtype=np.float64)
    t = abs(studentized_trimmed_mean(values, trimmed_per_side))
    if quantile == "normal":
        return float(2.0 * stats.norm.sf(t))
    return float(2.0 * stats.t.sf(t, values.size - 2 * trimmed_per_side - 1))


def trimmed_mean_roots(response_delta: npt.ArrayLike, spend_delta: npt.ArrayLike, trim_rate: float) -> FloatArray:
    """Every solution ``theta`` of ``trimmed-mean(y - theta x) = 0`` at ``trim_rate``, ascending.

    The diagnostic behind :func:`trimmed_match`'s point estimate (which picks the root with the
    smallest trimmed symmetric norm). ``trim_rate`` must leave at least one pair untrimmed; ``0``
    gives the single root ``sum y / sum x``. Empty when the equation has no solution (the untrimmed
    pairs' spend deltas cancel). Raises :class:`~stats.errors.InvalidProblem` as :func:`trimmed_match`.
    """
    y, x = _checked_pairs(response_delta, spend_delta)
    n = y.size
    if not (isinstance(trim_rate, (int, float)) and 0.0 <= trim_rate < 0.5):
        raise InvalidProblem("trim_rate", "must lie in [0, 0.5)")
    m = trimmed_per_side(trim_rate, n)
    if n - 2 * m < 1:
        raise InvalidProblem("trim_rate", f"trims {m} of {n} pairs at each end; no pair remains")
    if m == 0:
        total = float(np.sum(x))
        return np.array([float(np.sum(y)) / total]) if total != 0.0 else np.empty(0)
    roots, _ = _sweep(y, x, [m], None)
    return _distinct(roots[0])


def trimmed_match(
    response_delta: npt.ArrayLike,
    spend_delta: npt.ArrayLike,
    confidence_level: float,
    *,
    trim_rate: float | None = None,
    max_trim_rate: float = DEFAULT_MAX_TRIM_RATE,
    quantile: Quantile = "student_t",
) -> TrimmedMatchResult:
    """Trimmed match estimate of iROAS with its test-inversion interval (see the module docstring).

    ``response_delta[i]`` and ``spend_delta[i]`` are treatment minus control over the test period for
    pair ``i``. ``trim_rate`` fixes the trim rate (in ``[0, 0.5)``, leaving at least 2 pairs);
    by default it is chosen from the data among ``k / n`` up to ``max_trim_rate`` (at most 0.30, the
    package's bound, and at most ``1/2 - 1/n``). ``quantile`` is the test's critical value: Student's t
    with ``h - 1`` degrees of freedom (default) or the package's normal quantile (:func:`critical_value`).

    Raises :class:`~stats.errors.InvalidProblem` naming the field for mismatched lengths, fewer than 3
    pairs, non-finite values, spend deltas all (within 1e-10) zero, a confidence level outside (0, 1),
    a trim rate out of range, or when no trim rate gives a solution of the trimmed-mean equation.
    """
    if not (isinstance(confidence_level, (int, float)) and 0.0 < confidence_level < 1.0):
        raise InvalidProblem("confidence_level", "must lie strictly between 0 and 1")
    y, x = _checked_pairs(response_delta, spend_delta)
    n = y.size
    rates, trims = _trim_grid(trim_rate, max_trim_rate, n)
    criticals = [critical_value(confidence_level, n, m, quantile) for m in trims]
    roots, hulls = _sweep(y, x, trims, criticals)
    candidates, cis, zs = _trim_candidates(y, x, rates, trims, roots, hulls, criticals)
    if not candidates:
        field = "trim_rate" if trim_rate is not None else "spend_delta"
        raise InvalidProblem(
            field, "the untrimmed pairs' spend deltas cancel out: the trimmed-mean equation has no solution"
        )

    floor = min(cand.std_error for cand in candidates) * (1.0 + 0.25 / math.sqrt(n))
    chosen = next(k for k, cand in enumerate(candidates) if cand.std_error <= floor)
    best = candidates[chosen]
    theta, se, m = best.estimate, best.std_error, best.trimmed_per_side
    ci_low, ci_high, fallback = _interval_or_fallback(cis[chosen], theta, se, zs[chosen])

    residuals = y - theta * x
    ranks = np.argsort(residuals, kind="stable")
    trimmed = tuple(sorted(int(k) for k in np.concatenate((ranks[:m], ranks[n - m :]))))
    residuals.flags.writeable = False
    cost = float(np.sum(x))
    ends = (ci_low * cost, ci_high * cost)
    incremental = Interval(estimate=theta * cost, ci_low=min(ends), ci_high=max(ends))
    return TrimmedMatchResult(
        estimate=theta,
        ci_low=ci_low,
        ci_high=ci_high,
        std_error=se,
        confidence_level=float(confidence_level),
        trim_rate=best.trim_rate,
        trimmed_per_side=m,
        trimmed_pairs=trimmed,
        residuals=residuals,
        incremental_cost=cost,
        incremental_response=incremental,
        candidates=tuple(candidates),
        ci_is_fallback=fallback,
        n_pairs=n,
    )


def _trim_grid(trim_rate: float | None, max_trim_rate: float, n: int) -> tuple[list[float], list[int]]:
    """The trim rates :func:`trimmed_match` tries over ``n`` pairs, with the pairs each trims at each end.

    The one rate asked for (leaving at least 2 pairs), or every ``k / n`` up to ``max_trim_rate`` (and
    ``1/2 - 1/n``) when it is ``None``. Raises :class:`~stats.errors.InvalidProblem` naming the field out of range.
    """
    if trim_rate is not None:
        if not (isinstance(trim_rate, (int, float)) and 0.0 <= trim_rate < 0.5):
            raise InvalidProblem("trim_rate", "must lie in [0, 0.5)")
        m = trimmed_per_side(trim_rate, n)
        if n - 2 * m < 2:
            raise InvalidProblem("trim_rate", f"trims {m} of {n} pairs at each end; at least 2 pairs must remain")
        return [float(trim_rate)], [m]
    if not (isinstance(max_trim_rate, (int, float)) and 0.0 <= max_trim_rate <= _MAX_AUTO_TRIM_RATE):
        raise InvalidProblem("max_trim_rate", f"must lie in [0, {_MAX_AUTO_TRIM_RATE}]")
    cap = min(float(max_trim_rate), 0.5 - 1.0 / n)
    trims = [k for k in range(n) if k / n <= cap + 1e-12]
    return [k / n for k in trims], trims


def _trim_candidates(
    y: FloatArray,
    x: FloatArray,
    rates: list[float],
    trims: list[int],
    roots: list[FloatArray],
    hulls: list[tuple[float, float]],
    criticals: list[float],
) -> tuple[list[TrimCandidate], list[tuple[float, float]], list[float]]:
    """The trim rates that give an estimate, each with its test-inversion hull and critical value.

    A rate is skipped when its trimmed-mean equation has no root (the spend deltas sum to zero, or the
    untrimmed pairs' cancel) or its standard error is not finite.
    """
    candidates: list[TrimCandidate] = []
    cis: list[tuple[float, float]] = []
    zs: list[float] = []
    for rate, m, found, hull, z in zip(rates, trims, roots, hulls, criticals, strict=True):
        if m == 0 and np.sum(x) == 0.0:
            continue
        if m > 0 and found.size == 0:
            continue
        theta = _pick_root(found, y, x, m)
        se = _std_error(y - theta * x, x, m)
        if not math.isfinite(se):
            continue
        candidates.append(TrimCandidate(trim_rate=rate, trimmed_per_side=m, estimate=theta, std_error=se))
        cis.append(hull)
        zs.append(z)
    return candidates, cis, zs


def _interval_or_fallback(hull: tuple[float, float], theta: float, se: float, z: float) -> tuple[float, float, bool]:
    """The chosen rate's test-inversion interval, or the package's Wald fallback when it is extreme.

    An empty hull (no theta accepted: rounding in a zero-variance problem at large magnitudes) falls back too.
    Returns ``(ci_low, ci_high, fell_back)``.
    """
    ci_low, ci_high = hull
    fallback = not (ci_low <= ci_high and ci_high - ci_low <= _EXTREME_CI_WIDTH * se)
    if fallback:
        half = _FALLBACK_MULTIPLIER * z * se
        ci_low, ci_high = theta - half, theta + half
    return ci_low, ci_high, fallback


def _excludes_zero(low: float, high: float) -> bool:
    return low > 0.0 or high < 0.0


def trimmed_match_p_value(
    response_delta: npt.ArrayLike, spend_delta: npt.ArrayLike, result: TrimmedMatchResult
) -> tuple[float, PValueMethod]:
    """Two-sided p-value of iROAS = 0 consistent with ``result``'s interval, and how it was found.

    ``result`` is :func:`trimmed_match` of these pair deltas. ``"t_test"``: :func:`trimmed_mean_test_p_value`
    of the response deltas (the residuals at iROAS 0) at the chosen trim rate, ``2 P(T_{h-1} > |t(0)|)``
    with ``t(0)`` their studentized trimmed mean and ``h`` the untrimmed pairs -- the test whose accepted
    set the interval is the hull of (Chen & Au 2022, eqns. 5.6-5.7). When that disagrees with the reported
    interval (the accepted set has a gap around 0, or the interval is the 3-standard-error fallback),
    ``"interval_inversion"``: the level at which the interval, recomputed at the same trim rate, starts to
    exclude 0, found by 50 bisection steps on the side of ``1 - confidence_level`` the reported interval
    is on, so that ``p <= 1 - confidence_level`` exactly when the interval excludes 0. The p-value lies in
    ``(0, 1]``.
    """
    y = np.asarray(response_delta, dtype=np.float64)
    alpha = 1.0 - result.confidence_level
    p = trimmed_mean_test_p_value(y, result.trimmed_per_side)
    excludes = _excludes_zero(result.ci_low, result.ci_high)
    if (p <= alpha) == excludes:
        return p, "t_test"

    def excluded(a: float) -> bool:
        again = trimmed_match(y, spend_delta, 1.0 - a, trim_rate=result.trim_rate)
        return _excludes_zero(again.ci_low, again.ci_high)

    if excludes:  # p in (0, alpha]: the smallest level's complement still excluding 0
        low, high = 1e-12, alpha
        if excluded(low):
            return low, "interval_inversion"
    else:  # p in (alpha, 1]
        low, high = alpha, 1.0 - 1e-12
        if not excluded(high):
            return 1.0, "interval_inversion"
    for _ in range(50):
        mid = 0.5 * (low + high)
        if excluded(mid):
            high = mid
        else:
            low = mid
    return high, "interval_inversion"


def relative_lift(incremental: Interval, observed_total: float) -> Interval:
    """The incremental response relative to the counterfactual total, ``d / (observed_total - d)``.

    Applied to the estimate and to each bound of ``incremental``: the map increases with ``d`` while the
    counterfactual ``observed_total - d`` is positive, so the bounds keep their order. A figure is NaN where
    the counterfactual is not positive or the bound is missing.

    >>> relative_lift(Interval(10.0, 4.0, 16.0), 110.0).estimate  # 10 / (110 - 10)
    0.1
    """

    def ratio(value: float | None) -> float:
        if value is None:
            return math.nan
        counterfactual = observed_total - float(value)
        return float(value) / counterfactual if counterfactual > 0.0 else math.nan

    return Interval(
        estimate=ratio(incremental.estimate), ci_low=ratio(incremental.ci_low), ci_high=ratio(incremental.ci_high)
    )
