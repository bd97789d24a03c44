"""Ridge-augmented synthetic control: GeoLift walkthrough (model="Ridge"), formula, cross-validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulations.geolift_data import load_geolift_panel
from stats.errors import InvalidProblem
from stats.geo.augmented_synthetic_control import (
    AugmentedSyntheticControlFit,
    cross_validate_lambda,
    fit_augmented_synthetic_control,
    ridge_correction,
)
from stats.geo.synthetic_control import fit_synthetic_control, simplex_least_squares

DATA = Path(__file__).resolve().parents[1] / "data"

# GeoLift walkthrough with model = "Ridge": ATT 156.805, lift 5.5%, incremental 4704.
GEOLIFT_ATT = 156.805
GEOLIFT_INCREMENTAL = 4704.0
GEOLIFT_LIFT_PERCENT = 5.5
# summary(GeoTestBest) (ridge): L2 imbalance 903.525, scaled 0.1626; a few of its 34 printed weights.
GEOLIFT_L2_IMBALANCE = 903.525
GEOLIFT_SCALED_L2_IMBALANCE = 0.1626
GEOLIFT_WEIGHTS = {
    "atlanta": 3e-04,
    "austin": 0.0467,
    "baton rouge": 0.1337,
    "boston": -4e-04,
    "cincinnati": 0.2273,
    "dallas": 0.0741,
    "houston": 0.0048,
    "miami": 0.2029,
    "oakland": -0.001,
    "oklahoma city": -7e-04,
    "reno": 0.0308,
    "san diego": 0.0452,
}


def geolift_problem(names: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    panel, geos = load_geolift_panel()
    treated = [geos.index("chicago"), geos.index("portland")]
    donors = [i for i in range(len(geos)) if i not in treated]
    if names is not None:
        names.extend(geos[i] for i in donors)
    return panel[treated].mean(axis=0), panel[donors].T


GeoliftFit = tuple[np.ndarray, np.ndarray, AugmentedSyntheticControlFit]


@pytest.fixture(scope="module")
def geolift_fit() -> GeoliftFit:
    y, donors = geolift_problem()
    return y, donors, fit_augmented_synthetic_control(y[:90], donors[:90])


def test_geolift_walkthrough_ridge_numbers(geolift_fit: GeoliftFit) -> None:
    y, donors, fit = geolift_fit
    counterfactual = fit.predict(donors)
    att = float(np.mean(y[90:] - counterfactual[90:]))
    incremental = att * 2 * 15
    lift = incremental / (2 * counterfactual[90:].sum())
    assert att == pytest.approx(GEOLIFT_ATT, rel=0.01)
    assert incremental == pytest.approx(GEOLIFT_INCREMENTAL, rel=0.01)
    assert 100 * round(lift, 3) == pytest.approx(GEOLIFT_LIFT_PERCENT)
    assert fit.weights.sum() == pytest.approx(1.0)
    assert fit.l2_imbalance == pytest.approx(GEOLIFT_L2_IMBALANCE, abs=5e-3)
    assert round(fit.scaled_l2_imbalance, 4) == GEOLIFT_SCALED_L2_IMBALANCE
    names: list[str] = []
    geolift_problem(names)
    ours = {name: round(float(w), 4) for name, w in zip(names, fit.weights, strict=True)}
    assert {name: ours[name] for name in GEOLIFT_WEIGHTS} == GEOLIFT_WEIGHTS
    # The ridge correction lowers the pre-period imbalance of plain SCM.
    scm = fit_synthetic_control(y[:90], donors[:90])
    assert fit.scaled_l2_imbalance <= scm.scaled_l2_imbalance
    np.testing.assert_allclose(fit.scm_weights, scm.weights, atol=1e-9)


def test_lambda_follows_the_one_standard_error_rule(geolift_fit: GeoliftFit) -> None:
    _, _, fit = geolift_fit
    cv = fit.cross_validation
    assert cv is not None
    assert cv.lambdas.size == 21
    assert cv.lambdas[0] / cv.lambdas[-1] == pytest.approx(1e8)
    imin = int(np.argmin(cv.errors))
    assert cv.lambda_min == cv.lambdas[imin]
    within = cv.lambdas[cv.errors <= cv.errors[imin] + cv.errors_se[imin]]
    assert fit.ridge_lambda == cv.lambda_1se == within.max()
    assert cv.lambda_1se >= cv.lambda_min


def test_weights_follow_the_augsynth_formula() -> None:
    """w_aug = w_scm + X_c (X_c'X_c + lambda I)^{-1} (x_1 - X_c' w_scm), written in period space."""
    rng = np.random.default_rng(7)
    t0, j = 30, 9
    b = rng.normal(size=(t0, j)) * 5 + rng.normal(size=j) * 20
    a = b @ rng.dirichlet(np.ones(j)) + rng.normal(size=t0) + 3.0
    lam = 12.5
    fit = fit_augmented_synthetic_control(a, b, ridge_lambda=lam)
    a_fe, b_fe = a - a.mean(), b - b.mean(axis=0)
    w_scm = simplex_least_squares(b_fe, a_fe)
    xc = (b_fe - b_fe.mean(axis=1, keepdims=True)).T  # donors x periods, centred per period
    x1 = a_fe - b_fe.mean(axis=1)
    expected = w_scm + xc @ np.linalg.solve(xc.T @ xc + lam * np.eye(t0), x1 - xc.T @ w_scm)
    np.testing.assert_allclose(fit.weights, expected, atol=1e-9)
    assert fit.cross_validation is None
    assert fit.ridge_lambda == lam
    # K maps the imbalance to the correction; both forms of K agree (J < T and J > T branches).
    k1 = ridge_correction(b_fe, lam)
    k2 = xc @ np.linalg.solve(xc.T @ xc + lam * np.eye(t0), np.eye(t0))
    np.testing.assert_allclose(k1, k2, atol=1e-10)
    wide = rng.normal(size=(5, 12))
    xw = (wide - wide.mean(axis=1, keepdims=True)).T
    np.testing.assert_allclose(
        ridge_correction(wide, 0.7), np.linalg.solve(xw @ xw.T + 0.7 * np.eye(12), xw), atol=1e-10
    )


def test_huge_lambda_gives_back_scm() -> None:
    y, donors = geolift_problem()
    fit = fit_augmented_synthetic_control(y[:90], donors[:90], ridge_lambda=1e30)
    np.testing.assert_allclose(fit.weights, fit.scm_weights, atol=1e-12)


@pytest.mark.parametrize("holdout", [1, 2, 3])
def test_cross_validation_matches_brute_force(holdout: int) -> None:
    rng = np.random.default_rng(11 + holdout)
    t0, j = 24, 10
    b = rng.normal(size=(t0, j)).cumsum(axis=0)
    a = b @ rng.dirichlet(np.ones(j)) + rng.normal(size=t0)
    path = cross_validate_lambda(a, b, holdout_length=holdout, n_lambda=10, lambda_min_ratio=1e-6)
    xc = (b - b.mean(axis=1, keepdims=True)).T
    x1 = a - b.mean(axis=1)
    errors = np.zeros((t0 - holdout, path.lambdas.size))
    for i in range(t0 - holdout):
        held = np.arange(i, i + holdout)
        keep = np.setdiff1d(np.arange(t0), held)
        x0 = xc[:, keep]
        w = simplex_least_squares(x0.T, x1[keep])
        for k, lam in enumerate(path.lambdas):
            ridge = x0 @ np.linalg.solve(x0.T @ x0 + lam * np.eye(keep.size), x1[keep] - x0.T @ w)
            errors[i, k] = np.sum((x1[held] - xc[:, held].T @ (w + ridge)) ** 2)
    np.testing.assert_allclose(path.errors, errors.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(path.errors_se, errors.std(axis=0, ddof=1) / np.sqrt(t0 - holdout), rtol=1e-6)
    assert path.lambdas[0] == pytest.approx(np.linalg.svd(xc, compute_uv=False)[0] ** 2)


def test_min_1se_false_picks_the_cv_minimum(geolift_fit: GeoliftFit) -> None:
    y, donors, fit = geolift_fit
    best = fit_augmented_synthetic_control(y[:90], donors[:90], min_1se=False)
    assert fit.cross_validation is not None
    assert best.ridge_lambda == fit.cross_validation.lambda_min


def test_invalid_input() -> None:
    with pytest.raises(InvalidProblem) as err:
        fit_augmented_synthetic_control(np.array([1.0]), np.ones((1, 3)))
    assert err.value.field == "pre_period"
    with pytest.raises(InvalidProblem) as err:
        fit_augmented_synthetic_control(np.array([1.0, 2.0, np.nan]), np.ones((3, 3)))
    assert err.value.field == "dataset"
    with pytest.raises(InvalidProblem) as err:
        fit_augmented_synthetic_control(np.array([1.0, 2.0, 3.0]), np.ones((3, 3)), ridge_lambda=-1.0)
    assert err.value.field == "ridge_lambda"
