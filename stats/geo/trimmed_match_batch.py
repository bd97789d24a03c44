"""Trimmed match point estimates of many experiments at once (the design's simulations).

Each row of ``response_delta`` / ``spend_delta`` is one experiment's pair deltas; each row gets the
point estimate and trim rate that :func:`stats.geo.trimmed_match.trimmed_match` gives it (Chen & Au 2022;
definitions in that module's docstring): for every trim ``m`` the roots of the trimmed-mean equation
``T_m(theta) = 0`` (the one with the smallest trimmed symmetric norm when several), the standard error
(eqn. 8.2) at it, and the smallest trim whose standard error is within ``1 + 0.25 / sqrt(n)`` of the
least. Two exact ways to the roots, both vectorised across rows:

* rows whose spend deltas share one strict sign (holdback, go-dark): ``T_m`` is then strictly
  monotone, so its single root is found by bisection between ``min(y / x)`` and ``max(y / x)`` and
  made exact on its final linear piece, ``sum_B y / sum_B x`` over the untrimmed pairs ``B``;
* other rows (heavy-up): a sweep over the kinks ``theta_ij = (y_i - y_j) / (x_i - x_j)`` in
  increasing order. Crossing a kink swaps two adjacent residuals; only a swap across a trim boundary
  changes ``B``, so ``sum_B y`` and ``sum_B x`` are updated in O(1) and each piece's root
  ``sum_B y / sum_B x`` is kept when it lies on the piece. ``O(n^2)`` steps, each over all rows at
  once, instead of sorting ``n`` residuals at every kink of every row. A row whose kinks coincide
  (three residuals crossing at one point) goes through :func:`~stats.geo.trimmed_match.trimmed_match`.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from stats.errors import InvalidProblem
from stats.geo.trimmed_match import trimmed_match

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

__all__ = ["trimmed_match_estimates"]

# stats.geo.trimmed_match's constants: the trim choice's tolerance, the search bound, a piece's root may
# sit this far (relative) outside it, and roots this close are one.
_SE_TOLERANCE = 0.25
_IROAS_BOUND = 1e10
_ROOT_RTOL = 1e-9
_BISECTION_STEPS = 200
# Elements held at once (rows x trims x pairs, or rows x kinks for the sweep), bounding memory.
_BLOCK_ELEMENTS = 1 << 22


def _trims(n: int, max_trim_rate: float) -> list[int]:
    cap = min(max_trim_rate, 0.5 - 1.0 / n)
    return [k for k in range(n) if k / n <= cap + 1e-12]


def _body_mask(n: int, trims: list[int]) -> FloatArray:
    rank = np.arange(n)
    return np.asarray([(rank >= m) & (rank < n - m) for m in trims], dtype=np.float64)


def _choose_trim(y: FloatArray, x: FloatArray, theta: FloatArray, trims: list[int]) -> tuple[FloatArray, FloatArray]:
    """``(estimate, trim rate)`` per row from each trim's root ``theta`` (rows x trims; NaN: no root)."""
    rows, n = y.shape
    mask = _body_mask(n, trims)
    m = np.asarray(trims, dtype=np.intp)
    safe = np.nan_to_num(theta)
    e = y[:, None, :] - safe[:, :, None] * x[:, None, :]
    order = np.argsort(e, axis=2, kind="stable")
    e = np.take_along_axis(e, order, axis=2)
    xs = np.take_along_axis(np.broadcast_to(x[:, None, :], e.shape), order, axis=2)
    t = np.arange(len(trims))
    squares = np.einsum("rtn,tn->rt", e * e, mask) + m[None, :] * (e[:, t, m] ** 2 + e[:, t, n - 1 - m] ** 2)
    spend = np.abs(np.einsum("rtn,tn->rt", xs, mask))
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.where(np.isnan(theta) | (spend == 0.0), np.inf, np.sqrt(squares) / spend)
    floor = se.min(axis=1, keepdims=True) * (1.0 + _SE_TOLERANCE / math.sqrt(n))
    chosen = np.argmax(se <= floor, axis=1)
    pick = np.arange(rows)
    return theta[pick, chosen], m[chosen] / n


def _monotone_roots(y: FloatArray, x: FloatArray, trims: list[int]) -> FloatArray:
    """Each trim's root for rows whose spend deltas are all positive (rows x trims)."""
    n = y.shape[1]
    mask = _body_mask(n, trims)
    ratio = y / x
    lo = np.repeat(ratio.min(axis=1)[:, None], len(trims), axis=1)
    hi = np.repeat(ratio.max(axis=1)[:, None], len(trims), axis=1)
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        residuals = np.sort(y[:, None, :] - mid[:, :, None] * x[:, None, :], axis=2)
        above = np.einsum("rtn,tn->rt", residuals, mask) > 0.0
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
        if np.all((hi - lo) <= 4.0 * np.finfo(float).eps * np.maximum(np.abs(lo), np.abs(hi))):
            break
    mid = 0.5 * (lo + hi)
    order = np.argsort(y[:, None, :] - mid[:, :, None] * x[:, None, :], axis=2, kind="stable")
    ys = np.take_along_axis(np.broadcast_to(y[:, None, :], order.shape), order, axis=2)
    xs = np.take_along_axis(np.broadcast_to(x[:, None, :], order.shape), order, axis=2)
    return np.asarray(np.einsum("rtn,tn->rt", ys, mask) / np.einsum("rtn,tn->rt", xs, mask), dtype=np.float64)


def _sorted_kinks(y: FloatArray, x: FloatArray) -> tuple[FloatArray, IntArray, IntArray]:
    """Per row, the kinks within the search bound in increasing order (``inf`` after the last) and their pairs."""
    n = y.shape[1]
    first, second = np.triu_indices(n, k=1)
    dx = x[:, first] - x[:, second]
    with np.errstate(divide="ignore", invalid="ignore"):
        kinks = (y[:, first] - y[:, second]) / dx
    kinks = np.where((dx != 0.0) & (np.abs(kinks) < _IROAS_BOUND), kinks, np.inf)
    order = np.argsort(kinks, axis=1, kind="stable")
    return np.take_along_axis(kinks, order, axis=1), first[order], second[order]


def _swept_candidates(
    y: FloatArray, x: FloatArray, trims: list[int]
) -> tuple[IntArray, IntArray, FloatArray, npt.NDArray[np.bool_]]:
    """Every piece's root of every row and trim: ``(row, trim index, root)``, and the rows whose kinks coincide."""
    rows, n = y.shape
    m = np.asarray(trims, dtype=np.intp)
    kinks, kink_a, kink_b = _sorted_kinks(y, x)
    finite = np.isfinite(kinks)
    start = np.where(finite[:, 0], kinks[:, 0] - (1.0 + np.abs(np.where(finite[:, 0], kinks[:, 0], 0.0))), 0.0)
    order = np.argsort(y - start[:, None] * x, axis=1, kind="stable")
    position = np.empty_like(order)
    row = np.arange(rows)
    position[row[:, None], order] = np.arange(n)[None, :]
    mask = _body_mask(n, trims)
    sum_y = np.take_along_axis(y, order, axis=1) @ mask.T
    sum_x = np.take_along_axis(x, order, axis=1) @ mask.T
    low = np.full(rows, -_IROAS_BOUND)
    done = np.zeros(rows, dtype=bool)
    coincident = np.zeros(rows, dtype=bool)
    found: list[tuple[IntArray, IntArray, FloatArray]] = []
    for k in range(kinks.shape[1] + 1):
        high = kinks[:, k] if k < kinks.shape[1] else np.full(rows, np.inf)
        active = np.isfinite(high)
        with np.errstate(divide="ignore", invalid="ignore"):
            root = sum_y / sum_x
        tol = _ROOT_RTOL * np.maximum(np.abs(root), 1.0)
        top = np.minimum(high, _IROAS_BOUND)[:, None]
        on_piece = (~done)[:, None] & (sum_x != 0.0) & (root >= low[:, None] - tol) & (root <= top + tol)
        r, t = np.nonzero(on_piece)
        found.append((r, t, root[r, t]))
        done |= ~active
        if not active.any():
            break
        a, b = kink_a[:, k], kink_b[:, k]
        pa, pb = position[row, a], position[row, b]
        coincident |= active & (np.abs(pa - pb) != 1)
        below = np.where(pa < pb, a, b)  # the smaller residual before the kink
        above = np.where(pa < pb, b, a)
        swap = np.minimum(pa, pb)
        enters_low = active[:, None] & (swap[:, None] == m[None, :] - 1)
        enters_high = active[:, None] & (swap[:, None] == n - m[None, :] - 1)
        change = enters_low.astype(np.float64) - enters_high.astype(np.float64)
        sum_y += change * (y[row, below] - y[row, above])[:, None]
        sum_x += change * (x[row, below] - x[row, above])[:, None]
        position[row[active], a[active]] = pb[active]
        position[row[active], b[active]] = pa[active]
        low = np.where(active, high, low)
    r = np.concatenate([f[0] for f in found])
    t = np.concatenate([f[1] for f in found])
    v = np.concatenate([f[2] for f in found])
    return r, t, v, coincident


def _swept_roots(y: FloatArray, x: FloatArray, trims: list[int]) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Each trim's root (rows x trims; NaN: none), the smallest symmetric norm among several; and coincident rows."""
    rows, n = y.shape
    m = np.asarray(trims, dtype=np.intp)
    r, t, v, coincident = _swept_candidates(y, x, trims)
    order = np.lexsort((v, t, r))
    r, t, v = r[order], t[order], v[order]
    same = (np.diff(r) == 0) & (np.diff(t) == 0)
    close = np.diff(v) <= _ROOT_RTOL * np.maximum(np.abs(v[1:]), 1.0)
    keep = np.concatenate(([True], ~(same & close)))
    r, t, v = r[keep], t[keep], v[keep]
    residuals = np.sort(y[r] - v[:, None] * x[r], axis=1)
    pairs = residuals + residuals[:, ::-1]
    rank = np.arange(n)[None, :]
    body = (rank >= m[t][:, None]) & (rank < n - m[t][:, None])
    norm = np.where(body, np.abs(pairs), 0.0).sum(axis=1) / body.sum(axis=1)
    best = np.lexsort((v, norm, t, r))
    r, t, v = r[best], t[best], v[best]
    first = np.concatenate(([True], (np.diff(r) != 0) | (np.diff(t) != 0)))
    theta = np.full((rows, len(trims)), np.nan)
    theta[r[first], t[first]] = v[first]
    # An untrimmed mean has one root, sum y / sum x (the pieces agree up to rounding).
    total = x.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        theta[:, 0] = np.where((m[0] == 0) & (total != 0.0), y.sum(axis=1) / total, theta[:, 0])
    return theta, coincident


def trimmed_match_estimates(
    response_delta: npt.ArrayLike, spend_delta: npt.ArrayLike, max_trim_rate: float
) -> tuple[FloatArray, FloatArray]:
    """Trimmed match point estimates and trim rates of many experiments (rows), as the module docstring says."""
    y = np.atleast_2d(np.asarray(response_delta, dtype=np.float64))
    x = np.atleast_2d(np.asarray(spend_delta, dtype=np.float64))
    if y.shape != x.shape or y.shape[1] < 3:
        raise InvalidProblem("response_delta", "needs rows of at least 3 pairs, shaped as spend_delta")
    trims = _trims(y.shape[1], max_trim_rate)
    n = y.shape[1]
    sign = np.where(np.all(x > 0.0, axis=1), 1.0, np.where(np.all(x < 0.0, axis=1), -1.0, 0.0))
    theta = np.full((y.shape[0], len(trims)), np.nan)
    fast = np.flatnonzero(sign != 0.0)
    block = max(1, _BLOCK_ELEMENTS // (len(trims) * n))
    for begin in range(0, fast.size, block):  # a row and its negation have the same roots
        rows = fast[begin : begin + block]
        theta[rows] = _monotone_roots(y[rows] * sign[rows, None], x[rows] * sign[rows, None], trims)
    swept = np.flatnonzero(sign == 0.0)
    alone = np.zeros(y.shape[0], dtype=bool)
    block = max(1, _BLOCK_ELEMENTS // (n * (n - 1) // 2))
    for begin in range(0, swept.size, block):
        rows = swept[begin : begin + block]
        theta[rows], coincident = _swept_roots(y[rows], x[rows], trims)
        alone[rows[coincident]] = True
    estimates = np.empty(y.shape[0])
    rates = np.empty(y.shape[0])
    block = max(1, _BLOCK_ELEMENTS // (len(trims) * n))
    for begin in range(0, y.shape[0], block):
        rows = np.arange(begin, min(begin + block, y.shape[0]))
        estimates[rows], rates[rows] = _choose_trim(y[rows], x[rows], theta[rows], trims)
    for row in np.flatnonzero(alone | np.isnan(estimates)):
        fit = trimmed_match(y[row], x[row], 0.8, max_trim_rate=max_trim_rate)
        estimates[row], rates[row] = fit.estimate, fit.trim_rate
    return estimates, rates
