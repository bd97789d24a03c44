"""Conformal inference for synthetic controls: p-values and confidence intervals by test inversion.

Chernozhukov, Wüthrich & Zhu (2021), "An Exact and Robust Conformal Inference Method for
Counterfactual and Synthetic Controls", JASA 116(536), 1849-1864 (the procedure ``augsynth``'s
``conformal_inf`` implements and GeoLift reports).

Data: the treated series ``y_t`` (several treated units averaged) and donors ``Y_jt`` over
``T = T0 + T1`` periods, of which the ``T1`` post periods are marked.  To test the sharp null
``H0: y_t(1) - y_t(0) = theta`` for every post period:

1. subtract ``theta`` from the treated post outcomes, ``y~_t = y_t - theta 1{t post}``;
2. re-fit the estimator on *all* ``T`` periods (SCM, or ridge-augmented SCM with its penalty fixed;
   fixed effects are then the full-period unit means), so the fit treats periods symmetrically;
3. take the residuals ``u_t = y~_t - y^_t`` and the statistic ``S(u) = (sum_{t post} |u_t|^q)^{1/q}``
   (``statistic="total"``; ``q = 1`` is GeoLift's default "Total" test ``sum |u_t|``), or
   ``S(u) = |sum_{t post} u_t|`` (``statistic="mean"``, aimed at the average effect);
4. compare it with its permutation distribution:

   * moving-block (cyclic) permutations ``u_{(t + k) mod T}``, all ``k = 0..T-1`` (exact under
     exchangeability, valid under weak dependence): ``p = #{k : S_k >= S_0} / T``;
   * iid permutations, ``n`` seeded random permutations ``pi``:
     ``p = (1 + #{pi : S_pi >= S_0}) / (1 + n)``.

**The test runs on the panel deflated by the donors' common level.** Before step 2 every series is divided by
``s_t = m_t / mean_u(m_u)``, ``m_t`` the donors' total ``sum_j Y_jt`` averaged over the centred week
(:func:`donor_level`), so the estimator is re-fitted on ``y~_t / s_t`` and ``Y_jt / s_t`` and the residuals are
in "KPI at the average level" (the null's direction becomes ``-1{t post} / s_t``, still affine in ``theta``).
Why: in geo panels the noise grows with the markets' level (multiplicative noise), and on growing markets the
test days are the noisiest, best-leveraged days of the panel; with the raw residuals the permutations drew the
test's reference from a quieter past, and the test rejected 12% of true nulls at alpha 5% with a 365-day history
on issue 23's trending process (markets +0.3% a day, noise sd 15% of the level; 2,000 tests, SE 0.5); on the
deflated panel it rejects 4.5%, 4.5% and 4.8% at 90, 180 and 365 pre-days, with or without growth
(``bench/calibrate_geo_false_positives.py``; with 10 treated markets and 365 pre-days 6.4% against 17.9%, 1,000
tests).  Two other statistics were measured and rejected: the raw residuals divided by the level (``u_t / s_t``,
or by the re-fit's counterfactual) rejected 2% (800 tests; the fit, in levels, is best on the high-level test
days and its constant fixed effect becomes a drift once divided by a growing level), and moving blocks
restricted to the recent history trade the problem for a tuning constant.  Deflating the panel makes the
residual noise homoskedastic when the markets share their growth (it removes a shared ``exp(g t)`` exactly) and
turns the fixed effect into one proportional to the common level.  The week's average keeps the daily pattern
out of ``s``: the synthetic control fits the treated market's own weekly pattern, and dividing by the donors'
(whose total swings by +-50% within the week on GeoLift's walkthrough panel) would impose theirs on it (the
walkthrough's p-value went from 0.11 to 0.35).  Validity: ``s`` depends on the donors alone, which the treatment
does not touch, and on every period symmetrically, so conditionally on the donors the deflated fit is an
estimator fitted on all ``T`` periods under the null, which is all the procedure asks of it (Chernozhukov,
Wüthrich & Zhu 2021: any estimator fitted on all periods under the null, any statistic of its residuals); the
test is exact when the deflated residuals are exchangeable and approximately valid when they are weakly
dependent and stationary -- the assumption the undeflated test made of the raw residuals, now made where it
holds for multiplicative noise.  Without growth ``s_t`` hovers around 1 and the test is the undeflated one up to
the slow fluctuations of the donors' weekly total.  When the donors' total is not positive on every period (a
KPI that can be zero or negative for all donors on a day) ``s = 1``: the undeflated test.  The point estimate
stays the pre-period fit on the raw panel; the in-space placebo, GeoLift's sharp-null p-value and the pointwise
intervals stay the raw-panel tests augsynth and GeoLift report.  The iid permutations assume exchangeable
periods, which the week's average breaks when the noise is additive and the treated level lies far from its
synthetic control's (14% false positives at 10% on ``tests/stats/test_conformal.py``'s additive panels, against
10% on the raw panel); the block permutations, the default, hold their level there.

The confidence interval inverts the *same* test: ``CI = {theta : p(theta) > alpha}`` (reported as
its hull; see :func:`invert_test`), so ``p(0) <= alpha`` exactly when ``0`` is outside the interval.
Caveat: the null is a *constant* effect.  When the effect varies strongly over the test period the
"total" statistic rejects every constant ``theta`` near the estimate (it also measures the spread of
the post residuals), and the accepted set can be empty, non-convex or away from the estimate --
GeoLift's walkthrough is such a case (GeoLift then falls back to jackknife+ intervals).  The
``"mean"`` statistic is insensitive to that spread and gives a proper interval there, with less
power against "no effect at all".  ``ConformalInference.ci_status`` and ``estimate_in_ci`` report it.
Pointwise intervals for each post period ``t`` re-fit on the pre-period plus ``t`` alone and
invert the one-period test ``|u_t|`` with block permutations over those ``T0 + 1`` periods
(``augsynth``'s pointwise intervals).

Speed: the re-fitted weights are piecewise affine in ``theta`` (the QP's linear term is affine
in ``theta`` and the minimiser on a fixed face is affine in the linear term), so the re-fit for
every ``theta`` comes from a handful of KKT solves (:meth:`SimplexQP.affine_piece`); grids of nulls
are then evaluated in one vectorised pass and the interval ends refined by multi-section.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from stats.errors import InvalidProblem
from stats.geo.augmented_synthetic_control import pre_period_fit_residuals, ridge_correction
from stats.geo.synthetic_control import AffinePiece, SimplexQP, demean

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
Scheme = Literal["block", "iid"]
Statistic = Literal["total", "mean"]
CiStatus = Literal["interval", "non_convex", "empty"]

__all__ = [
    "ConformalInference",
    "ConformalTest",
    "Inversion",
    "LinearRefit",
    "NullRefit",
    "conformal_inference",
    "donor_level",
    "invert_test",
    "pre_period_effects",
]

# Relative tolerance for "S_perm >= S_obs" so that permutations reproducing the observed set of
# post residuals (in another summation order) count as ties.
_TIE_RTOL = 1e-10


def donor_level(donors: FloatArray) -> FloatArray:
    """The donors' common level ``s_t`` ``(T,)``, the deflator of the conformal test (module docstring).

    ``s_t = m_t / mean_u(m_u)`` with ``m_t`` the donors' total ``sum_j Y_jt`` averaged over the centred week
    ``t-3..t+3`` (fewer days at the ends); ones when the total is not finite and positive on every period.
    """
    total = np.asarray(donors, dtype=np.float64).sum(axis=1)
    if not (total.size and np.all(np.isfinite(total)) and np.all(total > 0.0)):
        return np.ones(total.size)
    week = np.ones(7)
    smooth = np.convolve(total, week, mode="same") / np.convolve(np.ones(total.size), week, mode="same")
    return np.asarray(smooth / smooth.mean(), dtype=np.float64)


class LinearRefit:
    """Residuals of the estimator re-fitted on all periods of ``treated + s * direction``, for any ``s``.

    ``treated`` and ``direction`` are ``(T,)``, ``donors`` ``(T, J)``.  The target is affine in ``s``,
    so the re-fitted weights are piecewise affine in it (see the module docstring) and a whole family
    of re-fits costs a handful of KKT solves.  With ``level`` ``(T,)`` every series is divided by it first
    (the deflated panel of the module docstring) and the residuals are deflated ones.  With ``ridge_lambda``
    the estimator is the ridge-augmented SCM with that (fixed) penalty.  :class:`NullRefit` is the family of
    constant-effect nulls; :mod:`stats.geo.power` injects a multiplicative effect along ``direction = y * 1{post}``.
    """

    def __init__(
        self,
        treated: FloatArray,
        donors: FloatArray,
        direction: FloatArray,
        *,
        fixed_effects: bool = True,
        ridge_lambda: float | None = None,
        level: FloatArray | None = None,
    ) -> None:
        a = np.asarray(treated, dtype=np.float64)
        b = np.asarray(donors, dtype=np.float64)
        g = np.asarray(direction, dtype=np.float64)
        if level is not None:
            s = np.asarray(level, dtype=np.float64)
            a, b, g = a / s, b / s[:, None], g / s
        if fixed_effects:
            a0, _ = demean(a)
            bf, _ = demean(b)
            g = g - g.mean()
        else:
            a0, bf = a, b
        self._a0 = a0
        self._g = g
        self._b = bf
        self._qp = SimplexQP.from_design(bf)
        self._c0 = bf.T @ a0
        self._c1 = bf.T @ g
        self._mix: FloatArray | None = None
        if ridge_lambda is not None:
            self._mix = np.eye(a.size) - bf @ ridge_correction(bf, ridge_lambda)
        self._pieces: list[AffinePiece] = []

    @property
    def refits(self) -> int:
        """Number of QP solves so far (one per distinct optimal face met)."""
        return len(self._pieces)

    def _new_piece(self, theta: float) -> AffinePiece:
        """Solve at ``theta`` (warm-started from the nearest known piece) and record its piece."""
        best: AffinePiece | None = None
        gap = np.inf
        for piece in self._pieces:
            dist = piece.lo - theta if theta < piece.lo else theta - piece.hi
            if dist < gap:
                best, gap = piece, dist
        start = None if best is None else best.weights(min(max(theta, best.lo), best.hi))
        if start is not None and not start.sum() > 0.0:
            start = None
        w, _ = self._qp.solve(self._c0 + theta * self._c1, start=start, target=self._a0 + theta * self._g)
        piece = self._qp.affine_piece(self._c0, self._c1, theta, w)
        self._pieces.append(piece)
        return piece

    def weights(self, thetas: FloatArray) -> FloatArray:
        """Re-fitted SCM weights ``(k, J)`` for the parameters ``thetas`` ``(k,)``."""
        th = np.atleast_1d(np.asarray(thetas, dtype=np.float64))
        out = np.empty((th.size, self._b.shape[1]))
        todo = np.ones(th.size, dtype=bool)

        def fill(piece: AffinePiece) -> None:
            hit = todo & (th >= piece.lo) & (th <= piece.hi)
            if hit.any():
                out[hit] = np.maximum(piece.z0[None, :] + th[hit, None] * piece.z1[None, :], 0.0)
                todo[hit] = False

        for piece in self._pieces:
            fill(piece)
        while todo.any():
            i = int(np.argmax(todo))
            piece = self._new_piece(float(th[i]))
            fill(piece)
            if todo[i]:  # only for a non-finite theta: never loop on it
                out[i] = piece.weights(float(th[i]))
                todo[i] = False
        return out

    def residuals(self, thetas: FloatArray) -> FloatArray:
        """Residuals ``(k, T)`` of the re-fits for the parameters ``thetas``."""
        th = np.atleast_1d(np.asarray(thetas, dtype=np.float64))
        w = self.weights(th)
        u = self._a0[None, :] + th[:, None] * self._g[None, :] - w @ self._b.T
        if self._mix is not None:
            u = u @ self._mix.T
        return np.asarray(u, dtype=np.float64)


class NullRefit(LinearRefit):
    """Residuals of the estimator re-fitted on all periods under ``H0: effect = theta``.

    ``treated`` is ``(T,)``, ``donors`` ``(T, J)``, ``post`` a boolean mask ``(T,)``: the null
    subtracts ``theta`` from the treated post periods.  With ``ridge_lambda`` the estimator is the
    ridge-augmented SCM with that (fixed) penalty; with ``level`` (:func:`donor_level`) it is fitted on the
    deflated panel, ``theta`` staying an effect in KPI.
    """

    def __init__(
        self,
        treated: FloatArray,
        donors: FloatArray,
        post: BoolArray,
        *,
        fixed_effects: bool = True,
        ridge_lambda: float | None = None,
        level: FloatArray | None = None,
    ) -> None:
        direction = -np.asarray(post, dtype=np.float64)
        super().__init__(
            treated, donors, direction, fixed_effects=fixed_effects, ridge_lambda=ridge_lambda, level=level
        )


class ConformalTest:
    """Permutation p-values of the post-period statistic for a :class:`NullRefit`.

    ``statistic="total"``: ``S = sum_{post} |u_t|^q`` (GeoLift's default "Total" test for ``q = 1``);
    ``statistic="mean"``: ``S = |sum_{post} u_t|`` (aimed at the average effect).
    """

    def __init__(
        self,
        model: NullRefit,
        post: BoolArray,
        *,
        statistic: Statistic = "total",
        q: float = 1.0,
        n_permutations: int = 1000,
        seed: int = 0,
    ) -> None:
        mask = np.asarray(post, dtype=bool)
        t = mask.size
        self.model = model
        self.statistic = statistic
        self.q = float(q)
        self._post = np.flatnonzero(mask)
        self._block = (self._post[None, :] + np.arange(t)[:, None]) % t  # row 0 is the identity
        n = max(int(n_permutations), 0)
        rng = np.random.default_rng(seed)
        self._iid = rng.permuted(np.tile(np.arange(t), (n, 1)), axis=1)[:, : self._post.size]
        self.n_permutations = n
        self.n_blocks = t

    def _terms(self, thetas: FloatArray) -> FloatArray:
        u = self.model.residuals(thetas)
        if self.statistic == "mean":
            return u
        u = np.abs(u)
        return u if self.q == 1.0 else np.asarray(u**self.q, dtype=np.float64)

    def _reduce(self, sums: FloatArray) -> FloatArray:
        return np.abs(sums) if self.statistic == "mean" else sums

    def p_values(self, thetas: FloatArray, scheme: Scheme = "block") -> FloatArray:
        """p-values ``(k,)`` of the nulls ``thetas`` under block or iid permutations."""
        return self._p_from_terms(self._terms(thetas), scheme)

    def both_p_values(self, thetas: FloatArray) -> tuple[FloatArray, FloatArray]:
        """``(block, iid)`` p-values from one set of re-fits."""
        terms = self._terms(thetas)
        return self._p_from_terms(terms, "block"), self._p_from_terms(terms, "iid")

    def _p_from_terms(self, terms: FloatArray, scheme: Scheme) -> FloatArray:
        observed = self._reduce(terms[:, self._post].sum(axis=1))
        threshold = observed - _TIE_RTOL * np.abs(terms).sum(axis=1) - 1e-300
        if scheme == "block":
            stats = self._reduce(terms[:, self._block].sum(axis=2))
            return np.asarray(np.mean(stats >= threshold[:, None], axis=1), dtype=np.float64)
        if self.n_permutations < 1:
            raise ValueError("iid p-values need n_permutations >= 1")
        stats = self._reduce(terms[:, self._iid].sum(axis=2))
        count = np.sum(stats >= threshold[:, None], axis=1)
        return np.asarray((1.0 + count) / (1.0 + self.n_permutations), dtype=np.float64)


def _bracket(
    p_fn: Callable[[FloatArray], FloatArray], alpha: float, rejected: float, accepted: float, tol: float
) -> float:
    """Shrink ``(rejected, accepted)`` around the crossing nearest ``rejected``; return the accepted end."""
    sections = 8
    while abs(accepted - rejected) > tol:
        pts = np.linspace(rejected, accepted, sections + 1)[1:-1]
        acc = p_fn(pts) > alpha
        if acc.any():
            first = int(np.argmax(acc))
            accepted = float(pts[first])
            if first > 0:
                rejected = float(pts[first - 1])
        else:
            rejected = float(pts[-1])
    return accepted


@dataclass(frozen=True)
class Inversion:
    """An inverted test: ``[low, high]`` (``None`` = unbounded side) and how the accepted set looked.

    ``status``: ``"interval"`` when the accepted nulls met on the grid are contiguous,
    ``"non_convex"`` when rejected nulls lie between accepted ones (the hull is reported, cut at a
    rejected ``0``), ``"empty"`` when no null is accepted (bounds ``None``).  ``thetas``/``p_values``
    are the nulls evaluated on the grid.
    """

    low: float | None
    high: float | None
    status: CiStatus
    thetas: FloatArray
    p_values: FloatArray

    def p_at(self, theta: float) -> float | None:
        hit = np.flatnonzero(self.thetas == theta)
        return float(self.p_values[hit[0]]) if hit.size else None


def invert_test(
    p_fn: Callable[[FloatArray], FloatArray],
    alpha: float,
    center: float,
    scale: float,
    *,
    include: Sequence[float] = (0.0,),
    grid_points: int = 201,
    half_width: float = 10.0,
    rtol: float = 1e-7,
    max_doublings: int = 40,
) -> Inversion:
    """``{theta : p(theta) > alpha}`` as an interval.

    ``p_fn`` maps an array of nulls to p-values.  A grid of ``grid_points`` nulls over
    ``center +- half_width * scale`` (plus the ``include`` points) is evaluated in one call and
    widened by doubling steps until both ends are rejected (a side that never is stays ``None``:
    unbounded); the outermost crossings are then refined by multi-section to
    ``rtol * max(scale, |center|)``, keeping the accepted side, so ``p(low) > alpha`` while nulls just
    outside are rejected.  The interval is the hull of the accepted nulls, except that when ``0`` is
    included and rejected but accepted nulls lie on both sides of it, only the side holding
    ``center`` is kept: the interval never contains a rejected ``0``.
    """
    scale = float(scale) if scale > 0.0 and np.isfinite(scale) else max(abs(center), 1.0)
    width = half_width * scale
    grid = np.unique(np.concatenate([center + width * np.linspace(-1.0, 1.0, grid_points), np.asarray(include)]))
    thetas = list(grid)
    pvals = list(p_fn(grid))

    def extend(direction: int) -> bool:
        step = width
        for _ in range(max_doublings):
            edge = min(thetas) if direction < 0 else max(thetas)
            if pvals[thetas.index(edge)] <= alpha:
                return True
            x = edge + direction * step
            thetas.append(x)
            pvals.append(float(p_fn(np.array([x]))[0]))
            step *= 2.0
        edge = min(thetas) if direction < 0 else max(thetas)
        return bool(pvals[thetas.index(edge)] <= alpha)

    bounded_low = extend(-1)
    bounded_high = extend(+1)
    th = np.asarray(thetas)
    pv = np.asarray(pvals)
    if not (pv > alpha).any():
        # The accepted set may be narrower than the grid spacing: look closely around the centre.
        spacing = 2.0 * width / max(grid_points - 1, 1)
        fine = center + spacing * np.linspace(-1.0, 1.0, 201)
        th = np.concatenate([th, fine])
        pv = np.concatenate([pv, p_fn(fine)])
    order = np.argsort(th, kind="stable")
    th, pv = th[order], pv[order]
    acc = pv > alpha
    if not acc.any():
        return Inversion(None, None, "empty", th, pv)
    keep = acc.copy()
    zero = np.flatnonzero(th == 0.0)
    if zero.size and not acc[zero[0]]:
        left, right = acc & (th < 0.0), acc & (th > 0.0)
        if left.any() and right.any():
            side_right = center > 0.0 or (center == 0.0 and right.sum() >= left.sum())
            keep = right if side_right else left
    idx = np.flatnonzero(keep)
    lo_i, hi_i = int(idx[0]), int(idx[-1])
    contiguous = bool(acc[np.flatnonzero(acc)[0] : np.flatnonzero(acc)[-1] + 1].all())
    tol = rtol * max(scale, abs(center))
    low: float | None
    high: float | None
    if lo_i == 0:
        low = None if not bounded_low else float(th[0])
    else:
        low = _bracket(p_fn, alpha, float(th[lo_i - 1]), float(th[lo_i]), tol)
    if hi_i == th.size - 1:
        high = None if not bounded_high else float(th[-1])
    else:
        high = _bracket(p_fn, alpha, float(th[hi_i + 1]), float(th[hi_i]), tol)
    return Inversion(low, high, "interval" if contiguous else "non_convex", th, pv)


@dataclass(frozen=True)
class ConformalInference:
    """Conformal p-values and interval for a constant post-period effect on the treated series.

    ``p_value``, ``ci_low`` and ``ci_high`` come from the same test (``statistic``, ``scheme``):
    ``p_value <= alpha`` exactly when ``0`` is outside ``[ci_low, ci_high]``; it runs on the panel deflated
    by :func:`donor_level`, as do ``p_value_block`` and ``p_value_iid``.  ``None`` bounds are
    unbounded, or both ``None`` with ``ci_status == "empty"`` (no constant effect is accepted).
    ``estimate`` is the mean post-period effect of the pre-period fit; ``effects`` the per-period
    effects and ``pointwise_low``/``pointwise_high`` their one-period intervals (``None`` where
    unbounded).  ``refits`` counts the QP solves.  ``p_value_sharp_null`` is GeoLift's own test of
    no effect on any post period (``statistic="total"``, ``q = 1``, iid permutations, raw panel), whatever
    ``statistic`` and ``scheme`` the interval uses.
    """

    estimate: float
    p_value: float
    p_value_block: float
    p_value_iid: float
    p_value_sharp_null: float
    ci_low: float | None
    ci_high: float | None
    ci_status: CiStatus
    statistic: Statistic
    scheme: Scheme
    alpha: float
    q: float
    n_permutations: int
    n_block_permutations: int
    effects: FloatArray
    pointwise_low: tuple[float | None, ...] | None
    pointwise_high: tuple[float | None, ...] | None
    refits: int

    @property
    def estimate_in_ci(self) -> bool:
        lo = -np.inf if self.ci_low is None else self.ci_low
        hi = np.inf if self.ci_high is None else self.ci_high
        return self.ci_status != "empty" and lo <= self.estimate <= hi


def pre_period_effects(
    treated: FloatArray, donors: FloatArray, post: BoolArray, fixed_effects: bool, ridge_lambda: float | None
) -> tuple[FloatArray, float]:
    """Per-post-period effects of the pre-period fit (SCM, or ASCM with a fixed penalty) and its RMSE."""
    resid = pre_period_fit_residuals(treated, donors, post, fixed_effects=fixed_effects, ridge_lambda=ridge_lambda)
    rmse = float(np.sqrt(np.mean(resid[~post] ** 2)))
    return resid[post], rmse


def _sharp_null_p_value(
    treated: FloatArray,
    donors: FloatArray,
    post: BoolArray,
    fixed_effects: bool,
    ridge_lambda: float | None,
    n_permutations: int,
    seed: int,
) -> tuple[float, int]:
    """GeoLift's test of no effect on any post period (``sum |u_t|``, iid permutations, raw panel); its QP solves."""
    raw = NullRefit(treated, donors, post, fixed_effects=fixed_effects, ridge_lambda=ridge_lambda)
    sharp = ConformalTest(raw, post, statistic="total", q=1.0, n_permutations=n_permutations, seed=seed)
    return float(sharp.p_values(np.zeros(1), "iid")[0]), raw.refits


def _check_options(
    treated: FloatArray,
    post: BoolArray,
    *,
    alpha: float,
    statistic: Statistic,
    scheme: Scheme,
    q: float,
    n_permutations: int,
) -> None:
    """Refuse a level outside ``(0, 1)``, a post mask without pre or post periods, and unknown options."""
    if not 0.0 < alpha < 1.0:
        raise InvalidProblem("confidence_level", "must be strictly between 0 and 1")
    if post.shape != treated.shape or not post.any() or post.all():
        raise InvalidProblem("test_period", "needs both pre-period and test-period observations")
    if statistic not in ("total", "mean"):
        raise InvalidProblem("statistic", "must be 'total' or 'mean'")
    if scheme not in ("block", "iid"):
        raise InvalidProblem("scheme", "must be 'block' or 'iid'")
    if not (np.isfinite(q) and q >= 1.0):
        raise InvalidProblem("q", "must be a finite number >= 1")
    if n_permutations < 1:
        raise InvalidProblem("n_permutations", "must be at least 1")


@dataclass(frozen=True)
class _PointwiseIntervals:
    """One-period intervals of the effect per post period (``None`` where unbounded) and the QP solves they took."""

    low: tuple[float | None, ...]
    high: tuple[float | None, ...]
    refits: int


@dataclass(frozen=True)
class _PointwiseSettings:
    """What the one-period tests share with the main one: level, fit, statistic's ``q`` and grid resolution."""

    alpha: float
    fixed_effects: bool
    ridge_lambda: float | None
    q: float
    grid_points: int
    rtol: float


def _pointwise_intervals(
    treated: FloatArray,
    donors: FloatArray,
    post: BoolArray,
    effects: FloatArray,
    scale: float,
    settings: _PointwiseSettings,
    progress: Callable[[float], None] | None,
) -> _PointwiseIntervals:
    """Invert, for each post period alone (after the pre-period), the test of a constant effect.

    Each period's panel is the pre-period plus that one period, so all its permutations are the block
    ones; the grid is centred on that period's effect (``effects``) with spread ``scale``.
    ``progress`` receives fractions from 0.4 to 1 as the periods are done.
    """
    pre_idx = np.flatnonzero(~post)
    post_idx = np.flatnonzero(post)
    one = np.zeros(pre_idx.size + 1, dtype=bool)
    one[-1] = True
    lows: list[float | None] = []
    highs: list[float | None] = []
    refits = 0
    for k, t in enumerate(post_idx):
        rows = np.append(pre_idx, t)
        sub = NullRefit(
            treated[rows], donors[rows], one, fixed_effects=settings.fixed_effects, ridge_lambda=settings.ridge_lambda
        )
        sub_test = ConformalTest(sub, one, statistic="total", q=settings.q, n_permutations=0)

        def sub_p(thetas: FloatArray, sub_test: ConformalTest = sub_test) -> FloatArray:
            return sub_test.p_values(thetas, "block")

        inv = invert_test(
            sub_p,
            settings.alpha,
            float(effects[k]),
            scale,
            include=(),
            grid_points=max(settings.grid_points // 4, 11),
            half_width=5.0,
            rtol=max(settings.rtol, 1e-6),
        )
        lows.append(inv.low)
        highs.append(inv.high)
        refits += sub.refits
        if progress is not None:
            progress(0.4 + 0.6 * (k + 1) / post_idx.size)
    return _PointwiseIntervals(tuple(lows), tuple(highs), refits)


def conformal_inference(
    treated: FloatArray,
    donors: FloatArray,
    post: BoolArray,
    *,
    alpha: float,
    fixed_effects: bool = True,
    ridge_lambda: float | None = None,
    statistic: Statistic = "mean",
    q: float = 1.0,
    n_permutations: int = 1000,
    seed: int = 0,
    scheme: Scheme = "block",
    pointwise: bool = True,
    grid_points: int = 201,
    rtol: float = 1e-7,
    progress: Callable[[float], None] | None = None,
) -> ConformalInference:
    """Conformal test of no effect and interval for a constant effect (see the module docstring).

    ``treated`` ``(T,)`` and ``donors`` ``(T, J)`` hold the pre and post periods in time order and
    ``post`` ``(T,)`` marks the post periods.  ``ridge_lambda`` selects the ridge-augmented SCM with
    that penalty.  ``scheme`` picks the permutations behind ``p_value`` and the interval; the
    p-values of both schemes are reported.  ``grid_points`` (over +-10 residual spreads) and ``rtol``
    (relative precision of the interval ends) trade speed for resolution.  ``progress`` receives
    fractions in ``[0, 1]``.
    """
    a = np.asarray(treated, dtype=np.float64)
    b = np.asarray(donors, dtype=np.float64)
    mask = np.asarray(post, dtype=bool)
    _check_options(a, mask, alpha=alpha, statistic=statistic, scheme=scheme, q=q, n_permutations=n_permutations)
    effects, rmse = pre_period_effects(a, b, mask, fixed_effects, ridge_lambda)
    estimate = float(np.mean(effects))
    model = NullRefit(a, b, mask, fixed_effects=fixed_effects, ridge_lambda=ridge_lambda, level=donor_level(b))
    test = ConformalTest(model, mask, statistic=statistic, q=q, n_permutations=n_permutations, seed=seed)
    p_block0, p_iid0 = test.both_p_values(np.zeros(1))
    p_sharp0, sharp_refits = _sharp_null_p_value(a, b, mask, fixed_effects, ridge_lambda, n_permutations, seed)
    # Grid scale: the residual spread of the re-fit at the estimate.  The grid is wide (+-10 spreads)
    # because with heterogeneous effects the accepted set need not surround the estimate.
    resid_hat = model.residuals(np.array([estimate]))[0]
    spread = float(np.sqrt(np.mean(resid_hat**2))) or rmse or max(abs(estimate), 1.0)
    if progress is not None:
        progress(0.1)

    def p_fn(thetas: FloatArray) -> FloatArray:
        return test.p_values(thetas, scheme)

    inversion = invert_test(p_fn, alpha, estimate, spread, grid_points=grid_points, rtol=rtol)
    p0 = inversion.p_at(0.0)
    p_main = float(p0) if p0 is not None else float(p_block0[0] if scheme == "block" else p_iid0[0])
    if progress is not None:
        progress(0.4)
    refits = model.refits + sharp_refits
    bands = None
    if pointwise:
        settings = _PointwiseSettings(alpha, fixed_effects, ridge_lambda, q, grid_points, rtol)
        bands = _pointwise_intervals(a, b, mask, effects, rmse or spread, settings, progress)
        refits += bands.refits
    return ConformalInference(
        estimate=estimate,
        p_value=p_main,
        p_value_block=float(p_block0[0]),
        p_value_iid=float(p_iid0[0]),
        p_value_sharp_null=p_sharp0,
        ci_low=inversion.low,
        ci_high=inversion.high,
        ci_status=inversion.status,
        statistic=statistic,
        scheme=scheme,
        alpha=alpha,
        q=q,
        n_permutations=n_permutations,
        n_block_permutations=a.size,
        effects=effects,
        pointwise_low=None if bands is None else bands.low,
        pointwise_high=None if bands is None else bands.high,
        refits=refits,
    )
