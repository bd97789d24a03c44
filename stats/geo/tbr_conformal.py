"""TBR's moving-block conformal test (Chernozhukov, Wüthrich & Zhu 2021), inverted exactly.

The test and its inversion as :mod:`stats.geo.tbr`'s docstring states them: for a stack of problems whose
``d`` test days come last, the window statistics ``S_k(theta) = |a_k - theta b_k|`` -- each window's
prediction errors from the OLS fit on the days outside it, over the window's control level and the
root of the window sum's prediction-error variance factor (:func:`held_out_window_sums`) --, the
p-value at ``theta = 0`` and the hull of the accepted ``theta`` found among the finitely many points
where some ``S_k = S_0`` (:func:`invert`), whether that hull is all accepted
(:func:`accepted_set_is_interval`), and the per-day and cumulative bands (:func:`conformal_bands`); the
daily looks of :mod:`stats.geo.monitoring` run the same test. Pure numpy; :mod:`stats.geo.tbr` checks
the inputs and shapes the answers."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


# Relative tolerance for "S_k >= S_0", so that windows reproducing the observed sum count as ties.
_TIE_RTOL = 1e-9


# Elements of the (rows, candidates, windows) comparison array processed at once.
_CHUNK_ELEMENTS = 4_000_000


class Inversion(NamedTuple):
    """The conformal test of every row inverted (arrays of shape ``(R,)``; NaN = unbounded side)."""

    p_value: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    one_sided_p_value: FloatArray
    one_sided_low: FloatArray


def held_out_window_sums(y: FloatArray, x: FloatArray, d: int) -> tuple[FloatArray, FloatArray]:
    """``(a, b)`` of shape ``(R, T)``: ``S_k(theta) = |a_k - theta b_k|`` for the held-out, studentized test.

    ``y`` and ``x`` are ``(R, T)`` with the ``d`` test days last; window ``k`` is the ``d`` days from
    day ``T - d + k`` (mod ``T``), ``k = 0`` the test window. ``a_k`` is the sum over window ``k`` of
    the prediction errors of the OLS line ``y = alpha + beta x`` fitted on the other ``n = T - d``
    days, ``b_k`` the same for the test-day indicator divided by ``d``, both divided by
    ``c_k sqrt(q_k)``:

    * ``c_k = sum_{W_k} x``, the window's control total (1 for every window when some ``c_k <= 0``,
      where the control level is no scale);
    * ``q_k = d + d^2 / n + (sum_{W_k} (x_t - xbar_k))^2 / Sxx_k`` (``xbar_k`` and ``Sxx_k`` of the
      ``x`` outside the window), the variance of the window sum's prediction error in units of the
      residual variance, ``d + s' (X'X)^-1 s`` with ``s = (d, sum_{W_k} x)`` (Kerman, Wang & Vaver
      2017, eqn. 5). A window whose control sits far from the fit's mean (the test window of a growing
      series, which the line extrapolates to) has errors of larger variance than one inside the
      fitted range; studentizing makes the windows' statistics comparable, which keeps the cyclic
      permutations closer to exchangeable (any statistic keeps the test valid under exchangeability,
      Chernozhukov, Wüthrich & Zhu 2021, Theorems 1 and 2).

    Window 0 is fitted on the pre-period alone, so ``a_0 / b_0`` is the pre-period fit's cumulative
    prediction error. A constant control outside a window leaves the slope undefined; the
    minimum-norm fit (slope 0) is used there, and ``q_k = d + d^2 / n``.
    """
    rows, length = y.shape
    n_out = float(length - d)
    starts = (length - d + np.arange(length)) % length

    def window(v: FloatArray) -> FloatArray:
        running = np.concatenate([np.zeros((rows, 1)), np.cumsum(np.concatenate([v, v], axis=1), axis=1)], axis=1)
        return np.asarray(running[:, starts + d] - running[:, starts], dtype=np.float64)

    # Centring first keeps the complement's sums of squares free of cancellation at large levels.
    xc = x - x.mean(axis=1, keepdims=True)
    x_in = window(xc)
    xx_in = window(xc * xc)
    x_out = xc.sum(axis=1, keepdims=True) - x_in
    x_out_mean = x_out / n_out
    sxx_out = (np.einsum("rt,rt->r", xc, xc)[:, None] - xx_in) - n_out * x_out_mean * x_out_mean
    usable = sxx_out > 1e-12 * np.maximum(np.einsum("rt,rt->r", xc, xc)[:, None], 1e-300)

    def errors(v: FloatArray) -> FloatArray:
        vc = v - v.mean(axis=1, keepdims=True)
        v_in = window(vc)
        v_out_mean = (vc.sum(axis=1, keepdims=True) - v_in) / n_out
        sxv_out = (np.einsum("rt,rt->r", xc, vc)[:, None] - window(xc * vc)) - n_out * x_out_mean * v_out_mean
        slope = np.where(usable, sxv_out / np.where(usable, sxx_out, 1.0), 0.0)
        return np.asarray(v_in - d * (v_out_mean - slope * x_out_mean) - slope * x_in, dtype=np.float64)

    indicator = np.zeros((rows, length))
    indicator[:, length - d :] = 1.0 / d
    level = window(x)
    scale = np.where((level > 0).all(axis=1, keepdims=True), level, 1.0)
    # sum_{W_k} (x_t - xbar_k) in the centred coordinates: x_in - d * x_out_mean.
    # Divided before squaring, so that extreme levels do not overflow.
    lever = (x_in - d * x_out_mean) / np.sqrt(np.where(usable, sxx_out, 1.0))
    extrapolation = np.where(usable, lever * lever, 0.0)
    scale = scale * np.sqrt(d + d * d / n_out + extrapolation)
    return errors(y) / scale, errors(indicator) / scale


def _row_chunks(rows: int, per_row: int) -> list[slice]:
    step = max(1, _CHUNK_ELEMENTS // max(per_row, 1))
    return [slice(i, min(i + step, rows)) for i in range(0, rows, step)]


def _counts(a: FloatArray, b: FloatArray, theta: FloatArray, signed: bool) -> FloatArray:
    """``#{k : S_k(theta) >= S_0(theta)}`` (``k = 0`` included) for each row and each ``theta[:, c]``."""
    a0, b0 = a[:, :1, None], b[:, :1, None]
    ak, bk = a[:, None, 1:], b[:, None, 1:]
    th = theta[:, :, None]
    s0, sk = a0 - th * b0, ak - th * bk
    tolerance = _TIE_RTOL * (np.abs(a0) + np.abs(ak) + np.abs(th) * (np.abs(b0) + np.abs(bk)))
    if not signed:
        s0, sk = np.abs(s0), np.abs(sk)
    return np.asarray(1.0 + np.count_nonzero(sk >= s0 - tolerance, axis=2), dtype=np.float64)


def _lowest_and_highest(candidates: FloatArray, accepted: npt.NDArray[np.bool_]) -> tuple[FloatArray, FloatArray]:
    ok = accepted & np.isfinite(candidates)
    low = np.where(ok, candidates, np.inf).min(axis=1)
    high = np.where(ok, candidates, -np.inf).max(axis=1)
    return np.where(np.isfinite(low), low, np.nan), np.where(np.isfinite(high), high, np.nan)


def invert(a: FloatArray, b: FloatArray, alpha: float) -> Inversion:
    """p-values at ``theta = 0`` and the hulls of ``{theta : p(theta) > alpha}`` (two- and one-sided).

    The accepted sets change only where some ``S_k = S_0``, i.e. at the roots
    ``(a_0 - a_k) / (b_0 - b_k)`` and ``(a_0 + a_k) / (b_0 + b_k)``, and every ``S_k >= S_0`` set
    is closed, so the hull's ends are roots; ``a_0 / b_0`` (where ``S_0 = 0``) is always accepted
    when any point is. A side is unbounded when the test accepts at infinity, i.e. when
    ``#{k : |b_k| >= b_0} / T > alpha``.
    """
    rows, length = a.shape
    p_value = np.empty(rows)
    one_p = np.empty(rows)
    low = np.empty(rows)
    high = np.empty(rows)
    one_low = np.empty(rows)
    for chunk in _row_chunks(rows, 2 * length * length):
        ac, bc = a[chunk], b[chunk]
        a0, b0, ak, bk = ac[:, :1], bc[:, :1], ac[:, 1:], bc[:, 1:]
        zero = np.zeros((ac.shape[0], 1))
        p_value[chunk] = _counts(ac, bc, zero, signed=False)[:, 0] / length
        one_p[chunk] = _counts(ac, bc, zero, signed=True)[:, 0] / length
        with np.errstate(divide="ignore", invalid="ignore"):
            crossing = (a0 - ak) / (b0 - bk)
            reflected = (a0 + ak) / (b0 + bk)
            centre = a0 / b0
        crossing = np.where(np.isfinite(crossing), crossing, np.nan)
        reflected = np.where(np.isfinite(reflected), reflected, np.nan)
        centre = np.where(np.isfinite(centre), centre, np.nan)
        two = np.concatenate([crossing, reflected, centre], axis=1)
        accepted = _counts(ac, bc, two, signed=False) / length > alpha
        lo, hi = _lowest_and_highest(two, accepted)
        margin = 1e-12 * np.abs(b0)
        unbounded = (1.0 + np.count_nonzero(np.abs(bk) >= np.abs(b0) - margin, axis=1)) / length > alpha
        low[chunk] = np.where(unbounded, np.nan, lo)
        high[chunk] = np.where(unbounded, np.nan, hi)
        one = np.concatenate([crossing, centre], axis=1)
        accepted_one = _counts(ac, bc, one, signed=True) / length > alpha
        lo_one, _ = _lowest_and_highest(one, accepted_one)
        unbounded_one = (1.0 + np.count_nonzero(bk >= b0 - margin, axis=1)) / length > alpha
        one_low[chunk] = np.where(unbounded_one, np.nan, lo_one)
    return Inversion(p_value, low, high, one_p, one_low)


def two_sided_p_values(a: FloatArray, b: FloatArray) -> FloatArray:
    """``p(0) = #{k : S_k(0) >= S_0(0)} / T`` for each row of window sums ``(a, b)``, as :func:`invert` reports it."""
    counts = _counts(a, b, np.zeros((a.shape[0], 1)), signed=False)
    return np.asarray(counts[:, 0] / a.shape[1], dtype=np.float64)


def accepted_set_is_interval(a: FloatArray, b: FloatArray, alpha: float, low: float, high: float) -> bool:
    """Whether every ``theta`` in ``[low, high]`` is accepted (one row of window sums, ``a`` and ``b`` ``(T,)``).

    The accepted set changes only at the roots where some ``S_k = S_0``, so it is the whole hull when
    every root inside it and every midpoint between consecutive ones is accepted.
    """
    a0, b0, ak, bk = a[0], b[0], a[1:], b[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        roots = np.concatenate([(a0 - ak) / (b0 - bk), (a0 + ak) / (b0 + bk)])
    roots = np.unique(np.concatenate([[low, high], roots[np.isfinite(roots) & (roots > low) & (roots < high)]]))
    points = np.concatenate([roots, (roots[:-1] + roots[1:]) / 2.0])
    accepted = _counts(a[None, :], b[None, :], points[None, :], signed=False)[0] / a.size > alpha
    return bool(accepted.all())


def conformal_bands(
    y_pre: FloatArray, x_pre: FloatArray, y_post: FloatArray, x_post: FloatArray, alpha: float
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Per-day effect bands (pre-period plus that day) and cumulative bands (pre plus the first j days).

    Both invert the held-out, level-scaled, studentized test (:func:`held_out_window_sums`), so each band
    contains the pre-period fit's effect of that day and its running sum.
    """
    n_post = y_post.size
    day_y = np.column_stack([np.broadcast_to(y_pre, (n_post, y_pre.size)), y_post])
    day_x = np.column_stack([np.broadcast_to(x_pre, (n_post, x_pre.size)), x_post])
    daily = invert(*held_out_window_sums(day_y, day_x, 1), alpha)
    cum_low = np.empty(n_post)
    cum_high = np.empty(n_post)
    for j in range(1, n_post + 1):
        y = np.concatenate([y_pre, y_post[:j]])[None, :]
        x = np.concatenate([x_pre, x_post[:j]])[None, :]
        prefix = invert(*held_out_window_sums(y, x, j), alpha)
        cum_low[j - 1], cum_high[j - 1] = prefix.ci_low[0], prefix.ci_high[0]
    return daily.ci_low, daily.ci_high, cum_low, cum_high
