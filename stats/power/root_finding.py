"""Brent's root finder in plain Python, for the scalar solves of the power calculations."""

from __future__ import annotations

from collections.abc import Callable


def brent_root(
    f: Callable[[float], float],
    x_a: float,
    x_b: float,
    f_a: float,
    f_b: float,
    rtol: float = 4e-15,
    xtol: float = 1e-300,
) -> float:
    """Root of ``f`` in ``[x_a, x_b]`` (``f_a``, ``f_b`` of opposite signs) by Brent's method.

    The algorithm of ``scipy.optimize.brentq`` (Brent 1973, ch. 4), in plain Python because
    scipy's wrapper costs ~200 µs per call here, ten times the work of the iterations.
    """
    x_pre, x_cur, f_pre, f_cur = x_a, x_b, f_a, f_b
    x_blk = f_blk = s_pre = s_cur = 0.0
    if f_pre == 0.0:
        return x_pre
    for _ in range(200):
        if f_cur == 0.0:
            return x_cur
        if (f_pre < 0.0) != (f_cur < 0.0):
            x_blk, f_blk = x_pre, f_pre
            s_pre = s_cur = x_cur - x_pre
        if abs(f_blk) < abs(f_cur):
            x_pre, x_cur, x_blk = x_cur, x_blk, x_cur
            f_pre, f_cur, f_blk = f_cur, f_blk, f_cur
        delta = 0.5 * (xtol + rtol * abs(x_cur))
        s_bis = 0.5 * (x_blk - x_cur)
        if f_cur == 0.0 or abs(s_bis) < delta:
            return x_cur
        if abs(s_pre) > delta and abs(f_cur) < abs(f_pre):
            if x_pre == x_blk:  # secant
                s_try = -f_cur * (x_cur - x_pre) / (f_cur - f_pre)
            else:  # inverse quadratic interpolation
                d_pre = (f_pre - f_cur) / (x_pre - x_cur)
                d_blk = (f_blk - f_cur) / (x_blk - x_cur)
                s_try = -f_cur * (f_blk * d_blk - f_pre * d_pre) / (d_blk * d_pre * (f_blk - f_pre))
            if 2.0 * abs(s_try) < min(abs(s_pre), 3.0 * abs(s_bis) - delta):
                s_pre, s_cur = s_cur, s_try
            else:
                s_pre = s_cur = s_bis
        else:
            s_pre = s_cur = s_bis
        x_pre, f_pre = x_cur, f_cur
        x_cur += s_cur if abs(s_cur) > delta else (delta if s_bis > 0.0 else -delta)
        f_cur = f(x_cur)
    return x_cur


# --------------------------------------------------------------------------------------------
# Two proportions: z-test, pooled variance under H0, unpooled under H1
# --------------------------------------------------------------------------------------------
