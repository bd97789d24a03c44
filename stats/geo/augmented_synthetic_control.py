"""Ridge-augmented synthetic control (ASCM).

Ben-Michael, Feller & Rothstein (2021), "The Augmented Synthetic Control Method", JASA 116(536),
1789-1803, as implemented by ``augsynth`` (``progfunc = "Ridge"``, ``scm = TRUE``) and called by
Meta's GeoLift with ``model = "Ridge"``.

With (optionally fixed-effect demeaned) pre-period outcomes ``a~`` (treated, ``T0``) and ``B~``
(donors, ``T0 x J``), centre every period across donors, ``X_c = (B~ - rowmean(B~))'`` (``J x T0``)
and ``x_1 = a~ - rowmean(B~)``.  With the synthetic control weights ``w_scm`` (see
:mod:`stats.geo.synthetic_control`) the ridge-augmented weights are

    w_aug = w_scm + X_c (X_c' X_c + lambda I)^{-1} (x_1 - X_c' w_scm)
          = w_scm + (X_c X_c' + lambda I)^{-1} X_c (a~ - B~ w_scm),

i.e. the SCM estimate plus a ridge regression (of post outcomes on pre outcomes) applied to the
remaining pre-period imbalance.  ``w_aug`` still sums to one (``1' X_c = 0``) but may be negative.
The counterfactual is ``intercept + sum_j w_aug_j Y_jt`` with the fixed-effect intercept
``mean(a) - sum_j w_aug_j mean(B_j)``.

``lambda`` is chosen as ``augsynth`` does by default: a path of ``n_lambda + 1`` values from
``lambda_max = sigma_max(X_c)^2`` down to ``lambda_max * lambda_min_ratio`` (geometric), scored by
leave-``holdout_length``-periods-out cross-validation over the pre-period (for each fold the SCM
weights are re-fitted without the held-out periods and the augmented weights predict them), and
the largest ``lambda`` whose mean CV error is within one standard error of the minimum is kept
(``min_1se = TRUE``).  As in ``augsynth`` the folds start at every pre-period ``i`` with
``i + holdout_length <= T0 - 1`` (the last period is never held out) and the centred data are not
re-demeaned per fold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import eigh

from stats.errors import InvalidProblem
from stats.geo.synthetic_control import SimplexQP, check_series, demean, scaled_imbalance

FloatArray = NDArray[np.float64]

__all__ = [
    "AugmentedSyntheticControlFit",
    "LambdaPath",
    "cross_validate_lambda",
    "fit_augmented_synthetic_control",
    "pre_period_fit_residuals",
    "ridge_correction",
]


@dataclass(frozen=True)
class LambdaPath:
    """Cross-validation of the ridge penalty: candidate values, mean CV error and its standard error."""

    lambdas: FloatArray
    errors: FloatArray
    errors_se: FloatArray
    lambda_min: float
    lambda_1se: float


@dataclass(frozen=True)
class AugmentedSyntheticControlFit:
    """Ridge-augmented synthetic control weights and pre-period fit."""

    weights: FloatArray
    scm_weights: FloatArray
    intercept: float
    fixed_effects: bool
    ridge_lambda: float
    cross_validation: LambdaPath | None
    pre_rmse: float
    l2_imbalance: float
    scaled_l2_imbalance: float

    def predict(self, donors: FloatArray) -> FloatArray:
        """Counterfactual ``intercept + donors @ weights`` for donors of shape ``(T, J)``."""
        return self.intercept + np.asarray(donors, dtype=np.float64) @ self.weights


def _centre(design: FloatArray) -> FloatArray:
    """``X_c``: donors x periods, each period centred across donors."""
    return np.asarray((design - design.mean(axis=1, keepdims=True)).T, dtype=np.float64)


def ridge_correction(design: FloatArray, ridge_lambda: float) -> FloatArray:
    """The ``J x T`` matrix ``K`` with ``w_aug = w + K (a~ - B~ w)`` for the design ``B~`` (``T x J``)."""
    xc = _centre(np.asarray(design, dtype=np.float64))
    j, t = xc.shape
    if j <= t:
        return np.asarray(np.linalg.solve(xc @ xc.T + ridge_lambda * np.eye(j), xc), dtype=np.float64)
    return np.asarray(xc @ np.linalg.solve(xc.T @ xc + ridge_lambda * np.eye(t), np.eye(t)), dtype=np.float64)


def pre_period_fit_residuals(
    treated: FloatArray,
    donors: FloatArray,
    post: NDArray[np.bool_],
    *,
    fixed_effects: bool,
    ridge_lambda: float | None,
) -> FloatArray:
    """Residuals ``y_t - y^_t`` over every period of the SCM fitted on the pre-period alone (``~post``),
    ridge-augmented with the penalty ``ridge_lambda`` held fixed when it is given."""
    pre = ~post
    a, b = treated[pre], donors[pre]
    if fixed_effects:
        a_fit, a_mean = demean(a)
        b_fit, b_means = demean(b)
    else:
        a_fit, b_fit = a, b
    w, _ = SimplexQP.from_design(b_fit).solve(b_fit.T @ a_fit, target=a_fit)
    if ridge_lambda is not None:
        w = w + ridge_correction(b_fit, ridge_lambda) @ (a_fit - b_fit @ w)
    intercept = float(a_mean - b_means @ w) if fixed_effects else 0.0
    return np.asarray(treated - (intercept + donors @ w), dtype=np.float64)


def cross_validate_lambda(
    target: FloatArray,
    design: FloatArray,
    *,
    n_lambda: int = 20,
    lambda_min_ratio: float = 1e-8,
    holdout_length: int = 1,
    scm_weights: FloatArray | None = None,
) -> LambdaPath:
    """Score the ridge penalty path by leave-``holdout_length``-out CV over the pre-period.

    ``target`` (``T0``) and ``design`` (``T0 x J``) are the outcomes the weights are fitted on
    (already demeaned when fixed effects are used).  ``scm_weights`` (the full-sample SCM solution)
    only warm-starts the per-fold SCM fits.
    """
    a = np.asarray(target, dtype=np.float64)
    b = np.asarray(design, dtype=np.float64)
    t0 = b.shape[0]
    n_folds = t0 - holdout_length
    if holdout_length < 1 or n_folds < 1:
        raise InvalidProblem("pre_period", "is too short to cross-validate the ridge penalty")
    xc = _centre(b)  # J x T0
    x1 = a - b.mean(axis=1)
    gram = xc @ xc.T
    linear = xc @ x1
    # One eigen-decomposition of X_c X_c'; every fold's (X0 X0' + lambda I)^{-1} follows from it by
    # the Woodbury identity (X0 X0' = X_c X_c' - X_h X_h' for the held-out columns X_h).
    evals, evecs = eigh(gram)
    evals = np.maximum(evals, 0.0)
    lambda_max = float(evals[-1])
    if not lambda_max > 0.0:
        lambda_max = 1.0
    lambdas = lambda_max * (lambda_min_ratio ** (1.0 / n_lambda)) ** np.arange(n_lambda + 1)
    inv_diag = 1.0 / (evals[:, None] + lambdas[None, :])  # J x L: (X_c X_c' + lambda I)^{-1} in the eigenbasis
    start = scm_weights
    errors = np.empty((n_folds, lambdas.size))
    for i in range(n_folds):
        held = slice(i, i + holdout_length)
        xh = xc[:, held]  # J x h
        gram_i = gram - xh @ xh.T
        linear_i = linear - xh @ x1[held]
        w, _ = SimplexQP(gram_i).solve(linear_i, start=start)
        start = w
        # v = X0 r with r = x1_keep - X0' w; ridge weights (X0 X0' + lambda I)^{-1} v for every lambda.
        v = evecs.T @ (linear_i - gram_i @ w)  # J
        xt = evecs.T @ xh  # J x h
        av = inv_diag * v[:, None]  # J x L
        if holdout_length == 1:
            ax = inv_diag * xt  # J x L
            num = xt[:, 0] @ av  # L
            den = 1.0 - xt[:, 0] @ ax  # L
            ridge_e = av + ax * (num / den)[None, :]
        else:
            ax3 = inv_diag[:, None, :] * xt[:, :, None]  # J x h x L
            small = np.eye(holdout_length)[None] - np.einsum("jh,jkl->lhk", xt, ax3)  # L x h x h
            rhs = np.einsum("jh,jl->lh", xt, av)  # L x h
            coef = np.linalg.solve(small, rhs[:, :, None])[:, :, 0]  # L x h
            ridge_e = av + np.einsum("jhl,lh->jl", ax3, coef)
        ridge = evecs @ ridge_e  # J x L
        pred = xh.T @ (w[:, None] + ridge)  # h x L
        resid = x1[held][:, None] - pred
        errors[i] = np.sum(resid**2, axis=0)
    mean = errors.mean(axis=0)
    se = errors.std(axis=0, ddof=1) / np.sqrt(n_folds) if n_folds > 1 else np.zeros(lambdas.size)
    imin = int(np.argmin(mean))
    lambda_min = float(lambdas[imin])
    lambda_1se = float(lambdas[mean <= mean[imin] + se[imin]].max())
    return LambdaPath(lambdas=lambdas, errors=mean, errors_se=se, lambda_min=lambda_min, lambda_1se=lambda_1se)


def fit_augmented_synthetic_control(
    pre_treated: FloatArray,
    pre_donors: FloatArray,
    fixed_effects: bool = True,
    ridge_lambda: float | None = None,
    *,
    min_1se: bool = True,
    n_lambda: int = 20,
    lambda_min_ratio: float = 1e-8,
    holdout_length: int = 1,
) -> AugmentedSyntheticControlFit:
    """Fit ridge-augmented SCM weights on the pre-period (formula in the module docstring).

    ``ridge_lambda=None`` chooses the penalty by cross-validation (``min_1se`` picks the largest
    penalty within one standard error of the best, else the best).
    """
    a, b = check_series(pre_treated, pre_donors)
    if ridge_lambda is not None and not (np.isfinite(ridge_lambda) and ridge_lambda > 0.0):
        raise InvalidProblem("ridge_lambda", "must be a positive number")
    if fixed_effects:
        a_fit, a_mean = demean(a)
        b_fit, b_means = demean(b)
    else:
        a_fit, b_fit = a, b
    w_scm, _ = SimplexQP.from_design(b_fit).solve(b_fit.T @ a_fit, target=a_fit)
    path: LambdaPath | None = None
    if ridge_lambda is None:
        path = cross_validate_lambda(
            a_fit,
            b_fit,
            n_lambda=n_lambda,
            lambda_min_ratio=lambda_min_ratio,
            holdout_length=holdout_length,
            scm_weights=w_scm,
        )
        ridge_lambda = path.lambda_1se if min_1se else path.lambda_min
    k = ridge_correction(b_fit, ridge_lambda)
    w = w_scm + k @ (a_fit - b_fit @ w_scm)
    intercept = float(a_mean - b_means @ w) if fixed_effects else 0.0
    l2, scaled = scaled_imbalance(a_fit, b_fit, w)
    return AugmentedSyntheticControlFit(
        weights=w,
        scm_weights=w_scm,
        intercept=intercept,
        fixed_effects=fixed_effects,
        ridge_lambda=float(ridge_lambda),
        cross_validation=path,
        pre_rmse=l2 / float(np.sqrt(a.size)),
        l2_imbalance=l2,
        scaled_l2_imbalance=scaled,
    )
