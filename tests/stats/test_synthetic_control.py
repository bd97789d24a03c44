"""Synthetic control weights: GeoLift walkthrough, independent solvers, KKT conditions, speed."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from simulations.geolift_data import GEOLIFT_SCM_WEIGHTS, load_geolift_panel
from stats.errors import InvalidProblem
from stats.geo.synthetic_control import SimplexQP, fit_synthetic_control, simplex_least_squares

DATA = Path(__file__).resolve().parents[1] / "data"

# GeoLift walkthrough, GeoLift(Y_id="Y", data=GeoLift_Test, locations=c("chicago","portland"),
# treatment_start_time=91, treatment_end_time=105): ATT 155.556, lift 5.4%, incremental 4667.
GEOLIFT_ATT = 155.556
GEOLIFT_INCREMENTAL = 4667.0
GEOLIFT_LIFT_PERCENT = 5.4
# summary(GeoTest): L2 imbalance 909.489, scaled 0.1636, and the model weights (rounded to 4 places).
GEOLIFT_L2_IMBALANCE = 909.489
GEOLIFT_SCALED_L2_IMBALANCE = 0.1636
GEOLIFT_WEIGHTS = GEOLIFT_SCM_WEIGHTS


def load_geolift() -> tuple[np.ndarray, list[str]]:
    return load_geolift_panel()


def geolift_problem() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(treated average (105,), donors (105, 38), donor names)."""
    panel, geos = load_geolift()
    treated = [geos.index("chicago"), geos.index("portland")]
    donors = [i for i in range(len(geos)) if i not in treated]
    return panel[treated].mean(axis=0), panel[donors].T, [geos[i] for i in donors]


def load_smoking() -> tuple[np.ndarray, np.ndarray, list[int], list[str]]:
    """California cigarette sales and the 38 donor states, 1970-2000 (rows are years)."""
    with (DATA / "synth" / "smoking.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    states = sorted({r["state"] for r in rows})
    years = sorted({int(float(r["year"])) for r in rows})
    si = {s: i for i, s in enumerate(states)}
    yi = {y: i for i, y in enumerate(years)}
    panel = np.full((len(years), len(states)), np.nan)
    for r in rows:
        panel[yi[int(float(r["year"]))], si[r["state"]]] = float(r["cigsale"])
    ca = si["California"]
    donors = [i for i in range(len(states)) if i != ca]
    return panel[:, ca], panel[:, donors], years, [states[i] for i in donors]


def slsqp_simplex(design: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Independent oracle: SLSQP on the simplex least squares with tight tolerances.

    The problem is rescaled by the residual norm of uniform weights so the objective is O(1) and
    ``ftol`` means what it says.
    """
    scale = float(np.linalg.norm(target - design.mean(axis=1))) or 1.0
    b, a = design / scale, target / scale
    j = b.shape[1]
    res = minimize(
        lambda w: float(np.sum((a - b @ w) ** 2)),
        np.full(j, 1.0 / j),
        jac=lambda w: -2.0 * b.T @ (a - b @ w),
        bounds=[(0.0, 1.0)] * j,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(j)}],
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 1000},
    )
    assert res.success, res.message
    return np.asarray(res.x)


def assert_kkt(design: np.ndarray, target: np.ndarray, w: np.ndarray, rtol: float = 1e-7) -> None:
    assert w.min() >= 0.0
    assert abs(w.sum() - 1.0) < 1e-10
    grad = design.T @ (design @ w - target)
    scale = float(np.abs(design.T @ design).max() + np.abs(design.T @ target).max()) or 1.0
    support = w > 1e-10
    mu = grad[support].mean()
    assert np.all(np.abs(grad[support] - mu) <= rtol * scale)
    assert np.all(grad[~support] - mu >= -rtol * scale)


def test_geolift_walkthrough_scm_numbers() -> None:
    y, donors, _ = geolift_problem()
    fit = fit_synthetic_control(y[:90], donors[:90], fixed_effects=True)
    counterfactual = fit.predict(donors)
    att = float(np.mean(y[90:] - counterfactual[90:]))
    incremental = att * 2 * 15
    lift = incremental / (2 * counterfactual[90:].sum())
    assert att == pytest.approx(GEOLIFT_ATT, rel=0.005)
    assert incremental == pytest.approx(GEOLIFT_INCREMENTAL, rel=0.005)
    assert 100 * round(lift, 3) == pytest.approx(GEOLIFT_LIFT_PERCENT)
    assert fit.weights.sum() == pytest.approx(1.0)
    assert fit.weights.min() >= 0.0
    # The fixed-effect intercept makes the pre-period residuals average to zero.
    assert np.mean(y[:90] - counterfactual[:90]) == pytest.approx(0.0, abs=1e-8)
    assert fit.l2_imbalance == pytest.approx(GEOLIFT_L2_IMBALANCE, abs=1e-3)
    assert round(fit.scaled_l2_imbalance, 4) == GEOLIFT_SCALED_L2_IMBALANCE
    assert fit.pre_rmse == pytest.approx(np.sqrt(np.mean((y[:90] - counterfactual[:90]) ** 2)))


def test_geolift_walkthrough_weights() -> None:
    y, donors, names = geolift_problem()
    fit = fit_synthetic_control(y[:90], donors[:90])
    ours = {names[j]: round(float(w), 4) for j, w in enumerate(fit.weights) if round(float(w), 4) != 0.0}
    assert ours == GEOLIFT_WEIGHTS


@pytest.mark.parametrize("fixed_effects", [True, False])
def test_weights_match_slsqp_on_geolift(fixed_effects: bool) -> None:
    y, donors, _ = geolift_problem()
    a, b = y[:90], donors[:90]
    fit = fit_synthetic_control(a, b, fixed_effects=fixed_effects)
    if fixed_effects:
        a, b = a - a.mean(), b - b.mean(axis=0)
    oracle = slsqp_simplex(b, a)
    np.testing.assert_allclose(fit.weights, oracle, atol=1e-4)
    # Ours is at least as good as the oracle (to rounding).
    ours = np.sum((a - b @ fit.weights) ** 2)
    assert ours <= np.sum((a - b @ oracle) ** 2) * (1 + 1e-9)
    assert_kkt(b, a, fit.weights)


@pytest.mark.parametrize("fixed_effects", [True, False])
def test_weights_match_slsqp_on_smoking(fixed_effects: bool) -> None:
    ca, donors, years, _ = load_smoking()
    pre = np.array(years) < 1989
    fit = fit_synthetic_control(ca[pre], donors[pre], fixed_effects=fixed_effects)
    a, b = ca[pre], donors[pre]
    if fixed_effects:
        a, b = a - a.mean(), b - b.mean(axis=0)
    oracle = slsqp_simplex(b, a)
    np.testing.assert_allclose(fit.weights, oracle, atol=1e-4)
    assert_kkt(b, a, fit.weights)


def test_weights_match_pysyncon_outcome_only_synth() -> None:
    pd = pytest.importorskip("pandas")
    pysyncon = pytest.importorskip("pysyncon")
    ca, donors, years, names = load_smoking()
    pre = np.array(years) < 1989
    z0 = pd.DataFrame(donors[pre], index=np.array(years)[pre], columns=names)
    z1 = pd.Series(ca[pre], index=np.array(years)[pre], name="California")
    # pysyncon rescales every predictor row by its standard deviation; V = std^2 undoes that, so
    # its inner problem is exactly the outcome-only simplex least squares.
    v = pd.concat([z0, z1], axis=1).std(axis=1).to_numpy() ** 2
    synth = pysyncon.Synth()
    synth.fit(X0=z0, X1=z1, Z0=z0, Z1=z1, custom_V=v)
    ours = fit_synthetic_control(ca[pre], donors[pre], fixed_effects=False).weights
    np.testing.assert_allclose(ours, np.asarray(synth.W), atol=1e-4)
    top = {names[j] for j in np.flatnonzero(ours > 0.01)}
    # Abadie et al. (2010)'s synthetic California is built from these states (outcome-only fit).
    assert {"Utah", "Montana", "Nevada", "Connecticut"} <= top


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    periods=st.integers(2, 40),
    donors=st.integers(1, 30),
    kind=st.sampled_from(["random", "inside_hull", "duplicate_columns", "exact_donor"]),
)
def test_kkt_conditions_hold_on_random_problems(seed: int, periods: int, donors: int, kind: str) -> None:
    rng = np.random.default_rng(seed)
    b = rng.normal(size=(periods, donors)) * rng.uniform(0.1, 1000.0)
    if kind == "duplicate_columns" and donors > 1:
        b[:, -1] = b[:, 0]
    w_true = rng.dirichlet(np.ones(donors))
    if kind == "random":
        a = rng.normal(size=periods) * np.abs(b).mean()
    elif kind == "exact_donor":
        a = b[:, int(rng.integers(donors))].copy()
    else:
        a = b @ w_true
    w = simplex_least_squares(b, a)
    assert_kkt(b, a, w, rtol=1e-6)
    # Warm starts from any feasible point reach the same optimum value.
    qp = SimplexQP.from_design(b)
    warm, _ = qp.solve(b.T @ a, start=rng.dirichlet(np.ones(donors)))
    np.testing.assert_allclose(
        np.sum((a - b @ warm) ** 2), np.sum((a - b @ w) ** 2), rtol=1e-7, atol=1e-9 * np.sum(a**2)
    )


def test_affine_piece_matches_cold_solves() -> None:
    rng = np.random.default_rng(3)
    b = rng.normal(size=(50, 12))
    a0 = b @ rng.dirichlet(np.ones(12)) + 0.3 * rng.normal(size=50)
    g = rng.normal(size=50)
    qp = SimplexQP.from_design(b)
    theta = 0.4
    w, _ = qp.solve(b.T @ (a0 + theta * g), target=a0 + theta * g)
    piece = qp.affine_piece(b.T @ a0, b.T @ g, theta, w)
    assert piece.lo <= theta <= piece.hi
    inside = [piece.lo + f * (piece.hi - piece.lo) for f in (0.0, 0.3, 0.9)] if np.isfinite(piece.hi - piece.lo) else []
    for t in [theta, *inside]:
        cold = simplex_least_squares(b, a0 + t * g)
        np.testing.assert_allclose(piece.weights(t), cold, atol=1e-8)


def test_predict_and_intercept_without_fixed_effects() -> None:
    y, donors, _ = geolift_problem()
    fit = fit_synthetic_control(y[:90], donors[:90], fixed_effects=False)
    assert fit.intercept == 0.0
    np.testing.assert_allclose(fit.predict(donors), donors @ fit.weights)


@pytest.mark.parametrize(
    ("treated", "donors", "field"),
    [
        (np.array([]), np.zeros((0, 3)), "pre_period"),
        (np.array([1.0, np.nan, 2.0]), np.ones((3, 3)), "dataset"),
        (np.array([1.0, 2.0, 3.0]), np.array([[1.0, np.inf], [1.0, 2.0], [0.0, 1.0]]), "dataset"),
        (np.array([1.0, 2.0, 3.0]), np.ones((3, 0)), "treatment_markets"),
        (np.array([1.0, 2.0, 3.0]), np.ones((4, 2)), "dataset"),
    ],
)
def test_invalid_input(treated: np.ndarray, donors: np.ndarray, field: str) -> None:
    with pytest.raises(InvalidProblem) as err:
        fit_synthetic_control(treated, donors)
    assert err.value.field == field
