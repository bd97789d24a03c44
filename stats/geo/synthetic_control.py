"""Synthetic control weights: simplex-constrained least squares on pre-period outcomes.

Abadie, Diamond & Hainmueller (2010), "Synthetic Control Methods for Comparative Case Studies:
Estimating the Effect of California's Tobacco Control Program", JASA 105(490), 493-505; with the
outcome-only predictors and unit fixed effects of Ben-Michael, Feller & Rothstein (2021), "The
Augmented Synthetic Control Method", JASA 116(536) (``augsynth(..., fixedeff = TRUE)``, as GeoLift
calls it; also Doudchenko & Imbens, 2016).

Given the treated unit's pre-period outcomes ``a`` (length ``T0``; several treated units are
averaged first) and the donors' ``B`` (``T0 x J``), the weights solve

    w* = argmin_w ||a~ - B~ w||^2   subject to   w_j >= 0,  sum_j w_j = 1,

where with fixed effects ``a~ = a - mean(a)`` and ``B~_j = B_j - mean(B_j)`` (each unit minus its
own pre-period mean) and without them ``a~ = a``, ``B~ = B``.  The counterfactual of any period is

    y0_t = intercept + sum_j w_j Y_jt,   intercept = mean(a) - sum_j w_j mean(B_j)  (0 without FE).

The QP is solved to rounding by a primal active-set method on the ``J x J`` Gram matrix (the
Lawson-Hanson NNLS strategy, with the sum-to-one constraint kept as an equality in every face's
KKT system).  A cold start takes its first active set from ``scipy.optimize.nnls`` on the design
augmented with a heavily weighted sum-to-one row; a warm start (any feasible point, e.g. the
solution of a nearby problem) usually needs a single KKT solve.  Because the minimiser on a fixed
face is affine in the linear term, :meth:`SimplexQP.affine_piece` also returns the whole stretch
of a one-parameter family ``c(theta) = c0 + theta c1`` on which a face stays optimal; the conformal
inference uses it to re-fit the weights for every null hypothesis at almost no cost.

Fit statistics follow ``augsynth``: ``l2_imbalance = ||a~ - B~ w||``, ``scaled_l2_imbalance`` is
that divided by the imbalance of uniform weights ``w_j = 1/J``, and ``pre_rmse`` is
``l2_imbalance / sqrt(T0)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import lapack
from scipy.optimize import nnls

from stats.errors import InvalidProblem
from stats.magnitude import check_magnitude

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

__all__ = [
    "AffinePiece",
    "SimplexQP",
    "SyntheticControlFit",
    "demean",
    "fit_synthetic_control",
    "scaled_imbalance",
    "simplex_least_squares",
]

# Tolerance on the KKT multipliers, relative to the (rescaled) problem's linear term.
_KKT_TOL = 1e-11
# Weight of the sum-to-one row of the NNLS cold start, for donor columns of unit mean square norm.
_SUM_ROW_WEIGHT = 100.0
_gesv = lapack.dgesv


@dataclass(frozen=True)
class AffinePiece:
    """Optimal weights ``z0 + theta * z1`` for every ``theta`` in ``[lo, hi]``."""

    lo: float
    hi: float
    z0: FloatArray
    z1: FloatArray

    def weights(self, theta: float) -> FloatArray:
        return np.maximum(self.z0 + theta * self.z1, 0.0)


class SimplexQP:
    """``min_w 1/2 w'Qw - c'w`` over the probability simplex for one Gram matrix ``Q = B'B``.

    ``Q`` is rescaled so its mean diagonal is one and every linear term alike, which leaves the
    minimisers unchanged.  Pass ``design`` (``B``) to enable the NNLS cold start.
    """

    def __init__(self, gram: FloatArray, design: FloatArray | None = None) -> None:
        q = np.asarray(gram, dtype=np.float64)
        if q.ndim != 2 or q.shape[0] != q.shape[1] or q.shape[0] < 1:
            raise ValueError("gram must be a non-empty square matrix")
        self.n = q.shape[0]
        scale = float(np.trace(q)) / self.n
        self.scale = scale if scale > 0.0 and np.isfinite(scale) else 1.0
        self.q = q / self.scale
        self.design = None if design is None else np.asarray(design, dtype=np.float64)

    @classmethod
    def from_design(cls, design: FloatArray) -> SimplexQP:
        b = np.asarray(design, dtype=np.float64)
        if b.ndim != 2 or b.shape[1] < 1:
            raise ValueError("design must be a (periods x donors) matrix with at least one donor")
        return cls(b.T @ b, b)

    # -- solving ----------------------------------------------------------------------------------

    def solve(
        self,
        linear: FloatArray,
        start: FloatArray | None = None,
        target: FloatArray | None = None,
    ) -> tuple[FloatArray, int]:
        """Return ``(w, iterations)`` for the linear term ``c = B'a``.

        ``start`` is any feasible point (e.g. a previous solution).  Without it the solver starts
        from an NNLS fit when the design and ``target`` (``a``) are known, else from the best vertex.
        """
        c = np.asarray(linear, dtype=np.float64) / self.scale
        if self.n == 1:
            return np.ones(1), 0
        if start is not None:
            w = np.where(np.asarray(start, dtype=np.float64) > 0.0, start, 0.0)
            total = float(w.sum())
            if not total > 0.0:
                raise ValueError("start must have a positive entry")
            w = w / total
        elif self.design is not None and target is not None:
            w = self._nnls_start(np.asarray(target, dtype=np.float64), c)
        else:
            w = self._vertex_start(c)
        return self._active_set(c, w)

    def _vertex_start(self, c: FloatArray) -> FloatArray:
        w = np.zeros(self.n)
        w[int(np.argmin(0.5 * np.diag(self.q) - c))] = 1.0
        return w

    def _nnls_start(self, a: FloatArray, c: FloatArray) -> FloatArray:
        b = self.design
        assert b is not None
        root = float(np.sqrt(self.scale))
        aug = np.empty((b.shape[0] + 1, self.n))
        aug[:-1] = b / root
        aug[-1] = _SUM_ROW_WEIGHT
        rhs = np.empty(b.shape[0] + 1)
        rhs[:-1] = a / root
        rhs[-1] = _SUM_ROW_WEIGHT
        try:
            w = nnls(aug, rhs, maxiter=50 * self.n)[0]
        except RuntimeError:  # pragma: no cover - iteration limit reached
            return self._vertex_start(c)
        total = float(w.sum())
        if not (total > 0.0 and np.isfinite(total)):
            return self._vertex_start(c)
        return np.asarray(w / total, dtype=np.float64)

    def _active_set(self, c: FloatArray, w: FloatArray) -> tuple[FloatArray, int]:
        n = self.n
        q = self.q
        tol = _KKT_TOL * max(1.0, float(np.abs(c).max()))
        passive = w > 0.0
        blocked = np.zeros(n, dtype=bool)
        z = self._face(c[:, None], np.ones(1), passive)[0][:, 0]
        it = 0
        while it < 20 * n + 50:
            it += 1
            # Move towards the face minimiser, dropping the coordinates that reach zero first.
            bad = passive & (z <= 0.0)
            inner = 0
            while bad.any() and inner <= n:
                inner += 1
                idx = np.flatnonzero(bad)
                steps = w[idx] / (w[idx] - z[idx])
                alpha = float(steps.min())
                w = w + alpha * (z - w)
                w[idx[steps <= alpha * (1.0 + 1e-12)]] = 0.0
                passive = passive & (w > 0.0)
                z = self._face(c[:, None], np.ones(1), passive)[0][:, 0]
                bad = passive & (z <= 0.0)
            if bad.any():  # pragma: no cover - rounding guard; keep the iterate feasible
                passive = passive & ~bad
                z = self._face(c[:, None], np.ones(1), passive)[0][:, 0]
                z = np.where(passive, np.maximum(z, 0.0), 0.0)
                if not z.sum() > 0.0:
                    break
            w = np.where(passive, z, 0.0)
            grad = q @ w - c
            lam = grad - float(grad[passive].sum()) / float(passive.sum())
            lam[passive | blocked] = np.inf
            j = int(np.argmin(lam))
            if not lam[j] < -tol:
                break
            trial = passive.copy()
            trial[j] = True
            z_try = self._face(c[:, None], np.ones(1), trial)[0][:, 0]
            if z_try[j] <= 0.0:
                # Not a descent direction after rounding (collinear donors): leave j out.
                blocked[j] = True
                continue
            blocked[:] = False
            passive = trial
            z = z_try
        w = np.maximum(w, 0.0)
        return w / w.sum(), it

    def _face(self, c: FloatArray, sums: FloatArray, passive: BoolArray) -> tuple[FloatArray, FloatArray]:
        """Minimisers on the face ``{w_i = 0 for i not passive, sum w = s}`` for several right-hand sides.

        ``c`` has shape ``(n, k)`` and ``sums`` shape ``(k,)``.  Returns ``(z, nu)`` with ``z`` of shape
        ``(n, k)`` and the equality multipliers ``nu`` (``Q_PP z_P + nu = c_P``) of shape ``(k,)``.
        """
        idx = np.flatnonzero(passive)
        m = idx.size
        k = c.shape[1]
        z = np.zeros((self.n, k))
        if m == 1:
            z[idx[0]] = sums
            nu = c[idx[0]] - self.q[idx[0], idx[0]] * sums
            return z, nu
        kkt = np.ones((m + 1, m + 1))
        kkt[:m, :m] = self.q[idx][:, idx]
        kkt[m, m] = 0.0
        rhs = np.empty((m + 1, k))
        rhs[:m] = c[idx]
        rhs[m] = sums
        _, _, sol, info = _gesv(kkt, rhs)
        if info != 0 or not np.isfinite(sol).all():
            sol = np.linalg.lstsq(kkt, rhs, rcond=None)[0]
        z[idx] = sol[:m]
        return z, sol[m]

    # -- parametric family ------------------------------------------------------------------------

    def affine_piece(self, c0: FloatArray, c1: FloatArray, theta: float, w: FloatArray) -> AffinePiece:
        """The stretch of ``theta`` around ``theta`` on which the face of ``w`` stays optimal.

        ``w`` must be the minimiser for the linear term ``c0 + theta * c1``; on the returned
        interval the minimiser is exactly ``z0 + theta' * z1``.
        """
        c0s = np.asarray(c0, dtype=np.float64) / self.scale
        c1s = np.asarray(c1, dtype=np.float64) / self.scale
        passive = w > 0.0
        rhs = np.stack([c0s, c1s], axis=1)
        z, nu = self._face(rhs, np.array([1.0, 0.0]), passive)
        z0, z1 = z[:, 0], z[:, 1]
        # Multipliers of the inactive bounds: lam = Q z - c + nu, affine in theta.
        lam = self.q @ z - rhs + nu[None, :]
        tol = _KKT_TOL * max(1.0, float(np.abs(c0s + theta * c1s).max()))
        lo, hi = -np.inf, np.inf
        # z0 + t z1 >= 0 on the passive set; lam0 + t lam1 >= -tol elsewhere.
        for base, slope, floor in (
            (z0[passive], z1[passive], 0.0),
            (lam[~passive, 0], lam[~passive, 1], -tol),
        ):
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # a subnormal slope: t = ±inf
                t = (floor - base) / slope
            up = slope < 0.0  # constraint binds as theta grows
            down = slope > 0.0
            if up.any():
                hi = min(hi, float(t[up].min()))
            if down.any():
                lo = max(lo, float(t[down].max()))
        if not lo <= theta <= hi:
            # Rounding at a degenerate vertex: the piece is only valid at theta itself.
            return AffinePiece(lo=theta, hi=theta, z0=np.array(w, dtype=np.float64), z1=np.zeros(self.n))
        return AffinePiece(lo=lo, hi=hi, z0=z0, z1=z1)


def simplex_least_squares(design: FloatArray, target: FloatArray, start: FloatArray | None = None) -> FloatArray:
    """``argmin ||target - design @ w||`` over ``w >= 0, sum(w) = 1`` (no demeaning)."""
    b = np.asarray(design, dtype=np.float64)
    a = np.asarray(target, dtype=np.float64)
    w, _ = SimplexQP.from_design(b).solve(b.T @ a, start=start, target=a)
    return w


def demean(values: FloatArray, axis: int = 0) -> tuple[FloatArray, FloatArray]:
    """``(values - mean, mean)`` along ``axis``."""
    mean = np.mean(values, axis=axis)
    return values - np.expand_dims(mean, axis), np.asarray(mean, dtype=np.float64)


def scaled_imbalance(target: FloatArray, design: FloatArray, weights: FloatArray) -> tuple[float, float]:
    """``(||a - B w||, ||a - B w|| / ||a - B 1/J||)`` as ``augsynth`` reports them."""
    l2 = float(np.linalg.norm(target - design @ weights))
    uniform = float(np.linalg.norm(target - design.mean(axis=1)))
    if uniform > 0.0:
        return l2, l2 / uniform
    return l2, (0.0 if l2 == 0.0 else float("inf"))


@dataclass(frozen=True)
class SyntheticControlFit:
    """Synthetic control weights and pre-period fit; ``predict`` gives the counterfactual."""

    weights: FloatArray
    intercept: float
    fixed_effects: bool
    pre_rmse: float
    l2_imbalance: float
    scaled_l2_imbalance: float
    iterations: int

    def predict(self, donors: FloatArray) -> FloatArray:
        """Counterfactual ``intercept + donors @ weights`` for donors of shape ``(T, J)``."""
        return self.intercept + np.asarray(donors, dtype=np.float64) @ self.weights


def check_series(pre_treated: FloatArray, pre_donors: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Validate a treated series ``(T0,)`` and its donors ``(T0, J)``."""
    a = np.asarray(pre_treated, dtype=np.float64)
    b = np.asarray(pre_donors, dtype=np.float64)
    if a.ndim != 1 or a.size == 0:
        raise InvalidProblem("pre_period", "must contain at least one period")
    if b.ndim != 2 or b.shape[0] != a.size:
        raise InvalidProblem(
            "dataset", "donor outcomes must be a (periods x donors) matrix matching the treated series"
        )
    if b.shape[1] < 1:
        raise InvalidProblem("treatment_markets", "no control markets are left")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise InvalidProblem("dataset", "outcomes must be finite numbers (no NaN or infinity)")
    check_magnitude(a, "dataset")
    check_magnitude(b, "dataset")
    return a, b


def fit_synthetic_control(
    pre_treated: FloatArray,
    pre_donors: FloatArray,
    fixed_effects: bool = True,
    start: FloatArray | None = None,
) -> SyntheticControlFit:
    """Fit synthetic-control weights on the pre-period (formula in the module docstring).

    ``pre_treated`` has shape ``(T0,)``; ``pre_donors`` has shape ``(T0, J)``; ``start`` optionally
    warm-starts the solver with a feasible point.
    """
    a, b = check_series(pre_treated, pre_donors)
    if fixed_effects:
        a_fit, a_mean = demean(a)
        b_fit, b_means = demean(b)
    else:
        a_fit, b_fit = a, b
    w, iterations = SimplexQP.from_design(b_fit).solve(b_fit.T @ a_fit, start=start, target=a_fit)
    intercept = float(a_mean - b_means @ w) if fixed_effects else 0.0
    l2, scaled = scaled_imbalance(a_fit, b_fit, w)
    return SyntheticControlFit(
        weights=w,
        intercept=intercept,
        fixed_effects=fixed_effects,
        pre_rmse=l2 / float(np.sqrt(a.size)),
        l2_imbalance=l2,
        scaled_l2_imbalance=scaled,
        iterations=iterations,
    )
