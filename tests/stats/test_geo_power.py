"""Simulated power of a geo-lift design (``stats.geo.power``): the results' own test, and honest power.

References for the expected numbers:

* the decision: the conformal test the results use (``stats.geo.conformal``: ``NullRefit`` re-fitted on all periods
  of the panel deflated by the donors' level at ``theta = 0``, statistic ``|sum_{t test} u_t|``, ``T`` cyclic block
  permutations, reject when ``p <= alpha``), run here independently on the panel with the effect injected
  (``y_t (1 + e 1{t test})``); one-sided tests against the signed sum computed by hand;
* the power formula: the module docstring, ``power(e) = E_w (1/T) sum_r 1{test rejects on shift_r(u^0) + w m^e}``
  over the noise scale's posterior ``w ~ sqrt(chi2_nu / nu)``, recomputed here with loops over the ``T`` rotations
  and scipy's chi-square quantiles; ``nu`` Satterthwaite's, from the block-sum matrix built by loops and checked
  against the simulated variance of the block sums' mean square;
* the MDE and investment: GeoLift's ``GeoLiftMarketSelection`` rule and ``cpic * sum(Y_treated) * es``;
* GeoLift's walkthrough panel ``GeoLift_PreTest`` (first 90 days of ``GeoLift_Test.csv``; treated
  chicago + portland, 15 days);
* honest power: fresh panels from the seeded simulator :mod:`simulations.geo_simulation`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pytest
from scipy.stats import chi2

from simulations.geo_power_calibration import Agreement, calibrate_power
from simulations.geo_simulation import PanelModel
from simulations.geolift_data import load_geolift_panel
from stats.geo.conformal import ConformalTest, NullRefit, conformal_inference, donor_level
from stats.geo.power import (
    Side,
    block_sums,
    duration_power,
    minimum_detectable_effect,
    noise_rotation_power,
    scale_degrees_of_freedom,
)

FloatArray = np.ndarray

ALPHA = 0.1
# Effects (relative lifts) covering "never detected" to "always detected" on both panels below.
EFFECTS = (-0.2, -0.1, -0.05, -0.02, 0.0, 0.02, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3)


# --- Panels and independent references ------------------------------------------------------------


def geolift_pretest() -> tuple[FloatArray, FloatArray]:
    """GeoLift_PreTest (90 days): the treated markets chicago + portland ``(2, 90)`` and the donors ``(90, 38)``."""
    panel, geos = load_geolift_panel()
    treated = [geos.index("chicago"), geos.index("portland")]
    donors = [i for i in range(len(geos)) if i not in treated]
    return panel[treated, :90], panel[donors, :90].T


def simulated_history(seed: int = 7, n_treated: int = 3, days: int = 100) -> tuple[FloatArray, FloatArray]:
    """One history from the simulator (25 markets): treated ``(n, days)``, donors ``(days, 25 - n)``."""
    model = PanelModel(n_treated=n_treated)
    markets = model.markets(seed)
    panel = model.panel(markets, days, np.random.default_rng(seed + 1))
    return panel[markets.treated], panel[markets.donors].T


PANELS = {"geolift": geolift_pretest, "simulated": simulated_history}


def last_days(periods: int, duration: int) -> FloatArray:
    """The last ``duration`` of ``periods`` days marked as the test period."""
    return np.arange(periods) >= periods - duration


def injected(treated_mean: FloatArray, post: FloatArray, effect: float) -> FloatArray:
    """GeoLift's injection ``Y_t (1 + e)`` on the test days."""
    return np.asarray(treated_mean * (1.0 + effect * post), dtype=np.float64)


def results_p_value(y: FloatArray, donors: FloatArray, post: FloatArray) -> float:
    """The p-value of "no effect" of the test ``GET /results`` runs (mean statistic, block permutations, the
    panel deflated by the donors' level)."""
    test = ConformalTest(
        NullRefit(y, donors, post, level=donor_level(donors)), post, statistic="mean", n_permutations=0
    )
    return float(test.p_values(np.zeros(1), "block")[0])


def hand_level(donors: FloatArray) -> FloatArray:
    """The deflator by a loop: the donors' total averaged over days ``t-3..t+3`` (fewer at the ends), over its mean."""
    total = donors.sum(axis=1)
    t = total.size
    weekly = np.array([np.mean(total[max(0, i - 3) : min(t, i + 4)]) for i in range(t)])
    return np.asarray(weekly / weekly.mean(), dtype=np.float64)


def null_residuals(y: FloatArray, donors: FloatArray, post: FloatArray) -> FloatArray:
    """Residuals of the re-fit on all periods of the deflated panel at ``theta = 0``: the fixed-effect SCM fitted
    on ``y / s`` and ``donors / s`` (:func:`hand_level`)."""
    s = hand_level(donors)
    return np.asarray(NullRefit(y / s, donors / s[:, None], post).residuals(np.zeros(1))[0], dtype=np.float64)


def hand_p_value(u: FloatArray, post: FloatArray, side: Side) -> float:
    """``#{k : S_k >= S_0} / T`` over the ``T`` cyclic shifts of the test days, by a loop.

    ``S`` is ``|sum u|`` (two-sided), ``sum u`` (larger) or ``-sum u`` (smaller) over the shifted days.
    """
    t = u.size
    days = np.flatnonzero(post)
    sign = -1.0 if side == "smaller" else 1.0
    sums = [sign * float(np.sum(u[(days + k) % t])) for k in range(t)]
    stats = [abs(s) for s in sums] if side == "two-sided" else sums
    tolerance = 1e-9 * float(np.sum(np.abs(u)))
    return sum(s >= stats[0] - tolerance for s in stats) / t


def hand_block_variance_df(periods: int, duration: int) -> float:
    """Satterthwaite's ``(tr A)^2 / tr(A^2)`` for the mean square of the cyclic block sums of a demeaned white-noise
    path, ``A`` built by loops: ``A = P C P``, ``C_ij`` the number of cyclic ``duration``-day blocks holding days
    ``i`` and ``j``, ``P`` the demeaning projection."""
    t = periods
    c = np.zeros((t, t))
    for k in range(t):
        days = [(k + j) % t for j in range(duration)]
        for i in days:
            for j in days:
                c[i, j] += 1.0
    p = np.eye(t) - 1.0 / t
    a = p @ c @ p
    return float(np.trace(a) ** 2 / np.trace(a @ a))


def hand_scale_nodes(periods: int, duration: int) -> list[float]:
    """Sixteen equally likely values of ``sigma_hat / sigma``: ``sqrt(q / nu)`` at the midpoint quantiles ``q`` of
    chi-square (scipy's ``chi2.ppf``) with the degrees of freedom ``nu`` of :func:`hand_block_variance_df`."""
    nu = hand_block_variance_df(periods, duration)
    return [float(np.sqrt(chi2.ppf((k + 0.5) / 16, nu) / nu)) for k in range(16)]


def hand_rotation_power(
    y: FloatArray, donors: FloatArray, post: FloatArray, effect: float, alpha: float, side: Side
) -> float:
    """The module docstring's power: over the noise scale's nodes ``w`` (:func:`hand_scale_nodes`), the mean share
    of the ``T`` noise paths ``u^0_{t+r} + w c m^e`` that reject.

    ``u^0`` are the re-fit residuals without the effect, ``m^e = u^e - u^0`` the change the injected effect makes
    to them (each from its own re-fit), ``c = (1 - d / (T + d)) / (1 - d / T)`` the fixed-effect leakage of the
    real test (history plus test window) over that of the window's panel.
    """
    u0 = null_residuals(y, donors, post)
    d, t = int(post.sum()), y.size
    scale = (1.0 - d / (t + d)) / (1.0 - d / t)
    signal = scale * (null_residuals(injected(y, post, effect), donors, post) - u0)
    rejections = [
        hand_p_value(np.roll(u0, -r) + w * signal, post, side) <= alpha
        for w in hand_scale_nodes(t, d)
        for r in range(t)
    ]
    return float(np.mean(rejections))


# --- Block sums -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("periods", "start", "length"),
    [(10, 0, 1), (10, 0, 10), (10, 7, 3), (10, 8, 5), (17, 16, 4), (90, 75, 15), (105, 90, 15), (31, 3, 30)],
)
def test_block_sums_equal_a_naive_loop_over_cyclic_windows(periods: int, start: int, length: int) -> None:
    """``block_sums(x, start, L)[k] = sum_{j<L} x[(start + k + j) mod T]``, wrap-around included, on the last axis."""
    rng = np.random.default_rng(periods * 100 + start)
    x = rng.normal(size=(3, periods))
    expected = np.array(
        [[sum(row[(start + k + j) % periods] for j in range(length)) for k in range(periods)] for row in x]
    )
    np.testing.assert_allclose(block_sums(x, start, length), expected, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(block_sums(x[0], start, length), expected[0], rtol=1e-12, atol=1e-9)


# --- The decision is the results' own test ---------------------------------------------------------


@pytest.mark.parametrize("panel", sorted(PANELS))
def test_detected_is_the_results_conformal_test_on_the_injected_panel(panel: str) -> None:
    treated, donors = PANELS[panel]()
    duration = 15
    result = duration_power(treated, donors, duration, EFFECTS, alpha=ALPHA)
    y = treated.mean(axis=0)
    post = last_days(y.size, duration)
    expected = [float(results_p_value(injected(y, post, e), donors, post) <= ALPHA) for e in EFFECTS]
    assert list(result.detected) == expected
    assert 0.0 in expected and 1.0 in expected  # the comparison is not vacuous


def test_results_p_value_is_the_one_the_results_endpoint_reports_on_geolift() -> None:
    """``conformal_inference`` (what ``GET /results`` calls) reports the block p-value used as the reference."""
    treated, donors = geolift_pretest()
    y = treated.mean(axis=0)
    post = last_days(y.size, 15)
    for effect in (0.0, 0.1):
        y_e = injected(y, post, effect)
        inference = conformal_inference(y_e, donors, post, alpha=ALPHA, pointwise=False, n_permutations=1)
        assert inference.p_value_block == pytest.approx(results_p_value(y_e, donors, post), abs=1e-12)


@pytest.mark.parametrize("side", ["larger", "smaller"])
@pytest.mark.parametrize("panel", sorted(PANELS))
def test_one_sided_detection_is_the_signed_block_test(panel: str, side: Side) -> None:
    """One-sided: reject when ``#{k : ±S_k >= ±S_0} / T <= alpha`` with ``S`` the signed sum of residuals."""
    treated, donors = PANELS[panel]()
    duration = 15
    result = duration_power(treated, donors, duration, EFFECTS, alpha=ALPHA, side=side)
    y = treated.mean(axis=0)
    post = last_days(y.size, duration)
    expected = [
        float(hand_p_value(null_residuals(injected(y, post, e), donors, post), post, side) <= ALPHA) for e in EFFECTS
    ]
    assert list(result.detected) == expected
    assert 0.0 in expected and 1.0 in expected
    # A one-sided test never detects a clear effect of the other sign.
    wrong_sign = [
        d for e, d in zip(EFFECTS, result.detected, strict=True) if (e <= -0.1 if side == "larger" else e >= 0.1)
    ]
    assert wrong_sign and not any(wrong_sign)


def test_lookback_windows_detected_is_the_share_of_windows_whose_test_rejects() -> None:
    """GeoLift's ``lookback_window``: each window ``w`` is the test on the panel cut ``w`` days before the end."""
    treated, donors = geolift_pretest()
    duration, windows = 15, 4
    effects = (0.0, 0.03, 0.05, 0.1)
    result = duration_power(treated, donors, duration, effects, alpha=ALPHA, lookback_windows=windows)
    y = treated.mean(axis=0)
    for i, effect in enumerate(effects):
        decisions = []
        for w in range(windows):
            end = y.size - w
            post = last_days(end, duration)
            decisions.append(results_p_value(injected(y[:end], post, effect), donors[:end], post) <= ALPHA)
        assert result.detected[i] == pytest.approx(np.mean(decisions))


# --- Power -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("panel", "duration", "alpha", "side"),
    [
        ("geolift", 15, 0.1, "two-sided"),
        ("geolift", 10, 0.05, "two-sided"),
        ("geolift", 15, 0.2, "larger"),
        ("simulated", 7, 0.1, "smaller"),
        ("simulated", 21, 0.1, "two-sided"),
    ],
)
def test_power_is_the_share_of_rejecting_noise_paths_averaged_over_the_noise_scale(
    panel: str, duration: int, alpha: float, side: Side
) -> None:
    """Module docstring: at any effect, the share of the ``T`` paths ``shift_r(u^0) + w c m^e`` that reject,
    averaged over the noise scale's nodes ``w``; ``power(0)`` a count of paths (at most alpha, see the next
    test)."""
    treated, donors = PANELS[panel]()
    effects = (0.0, -0.05, 0.05, 0.1)
    result = duration_power(treated, donors, duration, effects, alpha=alpha, side=side)
    y = treated.mean(axis=0)
    post = last_days(y.size, duration)
    for effect, power in zip(effects, result.power, strict=True):
        assert power == pytest.approx(hand_rotation_power(y, donors, post, effect, alpha, side), abs=1e-12)
    assert result.power[0] * y.size == pytest.approx(round(result.power[0] * y.size))  # a count of paths


@pytest.mark.parametrize(("alpha", "side"), [(0.05, "two-sided"), (0.1, "larger"), (0.2, "smaller")])
def test_rotation_power_without_effect_is_at_most_alpha(alpha: float, side: Side) -> None:
    """Rotations of one path and no signal: ``#{r : p_r <= alpha} / T <= alpha`` by construction."""
    rng = np.random.default_rng(23)
    for t in (30, 97, 195):
        noise = rng.standard_normal(t)
        power, _ = noise_rotation_power(noise, np.zeros((1, t)), alpha, side)
        assert 0.0 < power[0] <= alpha


@pytest.mark.parametrize(("periods", "duration"), [(30, 15), (76, 15), (90, 15), (105, 15), (100, 7), (365, 28)])
def test_scale_degrees_of_freedom_are_satterthwaites_for_the_cyclic_block_sums(periods: int, duration: int) -> None:
    """``nu = (tr A)^2 / tr(A^2)`` for the mean square of the ``T`` cyclic block sums of a demeaned path."""
    assert scale_degrees_of_freedom(periods, duration) == pytest.approx(
        hand_block_variance_df(periods, duration), rel=1e-10
    )


@pytest.mark.parametrize(("periods", "duration"), [(76, 15), (90, 15), (180, 15)])
def test_block_sums_mean_square_varies_as_chi_square_with_those_degrees_of_freedom(periods: int, duration: int) -> None:
    """On 4,000 seeded white-noise paths (demeaned), ``2 E^2 / Var`` of the block sums' mean square is ``nu``.

    The ratio's sampling error is about 3% here; the tolerance is 10%."""
    rng = np.random.default_rng(periods)
    x = rng.standard_normal((4000, periods))
    x -= x.mean(axis=1, keepdims=True)
    mean_square = np.mean(block_sums(x, 0, duration) ** 2, axis=1)
    simulated = 2.0 * mean_square.mean() ** 2 / mean_square.var()
    assert simulated == pytest.approx(scale_degrees_of_freedom(periods, duration), rel=0.1)


def test_power_is_a_probability_not_geolifts_zero_or_one_on_the_walkthrough() -> None:
    """GeoLift's one-window "power" is 0 or 1 (issues #48, #171); the rotation probability is graded."""
    treated, donors = geolift_pretest()
    effects = tuple(np.round(np.arange(-0.2, 0.2001, 0.01), 2))
    result = duration_power(treated, donors, 15, effects, alpha=ALPHA)
    power = np.array(result.power)
    assert set(result.detected) <= {0.0, 1.0}
    assert np.all((power >= 0.0) & (power <= 1.0))
    strictly_inside = power[(power > 0.0) & (power < 1.0)]
    assert strictly_inside.size >= 5
    assert np.unique(strictly_inside).size >= 3


# --- MDE and investment ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("effects", "power", "target", "expected"),
    [
        # smallest |effect| reaching the target
        ((0.0, 0.05, 0.1, 0.15), (0.1, 0.5, 0.8, 0.95), 0.8, (0.1, 0.8)),
        # a negative effect of smaller size wins
        ((-0.1, -0.05, 0.0, 0.05, 0.1), (0.9, 0.85, 0.1, 0.6, 0.9), 0.8, (-0.05, 0.85)),
        # the positive one wins a tie in size
        ((-0.1, -0.05, 0.0, 0.05, 0.1), (0.9, 0.85, 0.1, 0.82, 0.9), 0.8, (0.05, 0.82)),
        # zero is skipped even when its "power" reaches the target
        ((0.0, 0.1, 0.2), (0.9, 0.5, 0.9), 0.8, (0.2, 0.9)),
        # non-monotone power: the smallest reaching one, not the first after a failure
        ((0.05, 0.1, 0.15), (0.85, 0.7, 0.9), 0.8, (0.05, 0.85)),
        # none reaches the target
        ((-0.1, 0.0, 0.1), (0.79, 0.1, 0.7), 0.8, (None, None)),
    ],
)
def test_minimum_detectable_effect_rule(
    effects: tuple[float, ...], power: tuple[float, ...], target: float, expected: tuple[float | None, float | None]
) -> None:
    """GeoLift's ``GeoLiftMarketSelection`` rule: smallest |effect| reaching the target, positive on ties."""
    assert minimum_detectable_effect(effects, power, target) == expected


def test_mde_and_investment_on_geolift_walkthrough() -> None:
    """Investment = cost per KPI (GeoLift's walkthrough: 7.5) x treated KPI over the last window x MDE."""
    treated, donors = geolift_pretest()
    effects = (-0.15, -0.1, -0.05, 0.0, 0.05, 0.1, 0.15, 0.2)
    result = duration_power(treated, donors, 15, effects, alpha=ALPHA, cost_per_kpi=7.5, power_target=0.8)
    kpi = sum(float(treated[m, d]) for m in range(2) for d in range(75, 90))
    assert result.treated_kpi == pytest.approx(kpi, rel=1e-12)
    assert result.mde is not None
    assert (result.mde, result.power_at_mde) == minimum_detectable_effect(effects, result.power, 0.8)
    assert result.investment == pytest.approx(7.5 * kpi * result.mde, rel=1e-12)
    # The refined MDE lies between the next smaller grid effect and the MDE, and reaches the target.
    assert result.mde_exact is not None
    smaller = max((e for e in effects if 0.0 <= e * np.sign(result.mde) < abs(result.mde)), key=abs, default=0.0)
    assert abs(smaller) < abs(result.mde_exact) <= abs(result.mde)
    assert duration_power(treated, donors, 15, (result.mde_exact,), alpha=ALPHA).power[0] >= 0.8 - 1e-12
    # No cost per KPI, or no effect reaching the target: no investment.
    assert duration_power(treated, donors, 15, effects, alpha=ALPHA).investment is None
    none = duration_power(treated, donors, 15, (0.0, 0.001), alpha=ALPHA, cost_per_kpi=7.5)
    assert none.mde is None and none.mde_exact is None and none.investment is None


# --- Honest power ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Design:
    """A simulated design: treated markets, test length, history length, the effect checked, the seed."""

    n_treated: int
    duration: int
    history: int
    effect: float
    seed: int


# Effects chosen on pilot runs with other seeds (41-74) so that the predicted power is about 0.6-0.8.
# Before the signal was scaled for the real test's length (stats.geo.power's docstring), the prediction
# was conservative for long tests: for 5 markets / 21 days the pilots read predicted - observed = -0.003
# to -0.045 (seeds 23-73).  With the scaling, 600 replications of these designs read +0.024, +0.016,
# -0.020 and -0.014.  On the deflated panel (1,500 replications): the plug-in power (the noise scale taken as
# known) +0.030, +0.002, -0.011, +0.026; the predictive power, integrated over the scale (2026-12-08), +0.010,
# -0.031, -0.050, -0.019.  Each design here keeps one market layout, so its noise scale is the same in every
# replication; the predictive power, which cannot know that from one history, pulls the predictions toward the
# middle and their mean by 2-4 points where the history holds 5-8 test lengths.
DESIGNS = (
    Design(n_treated=1, duration=7, history=100, effect=0.065, seed=2026),
    Design(n_treated=3, duration=14, history=100, effect=0.032, seed=2027),
    Design(n_treated=5, duration=21, history=110, effect=0.023, seed=2028),
    Design(n_treated=3, duration=21, history=120, effect=0.027, seed=2029),
)
REPLICATIONS = 1500


@dataclass(frozen=True)
class Replications:
    """Per replication: predicted power (from the history), the real test's decision with and without the effect."""

    predicted: FloatArray
    detected: FloatArray
    false_positive: FloatArray


@functools.cache
def replicate(design: Design, replications: int = REPLICATIONS) -> Replications:
    """Fresh history and fresh test window from the design's generator; predict on the history, test on both."""
    model = PanelModel(n_treated=design.n_treated)
    markets = model.markets(design.seed)
    rng = np.random.default_rng(design.seed + 1)
    days = design.history + design.duration
    post = last_days(days, design.duration)
    predicted, detected, false_positive = [], [], []
    for _ in range(replications):
        panel = model.panel(markets, days, rng)
        treated, donors = panel[markets.treated], panel[markets.donors].T
        history = slice(0, design.history)
        power = duration_power(treated[:, history], donors[history], design.duration, (design.effect,), alpha=ALPHA)
        predicted.append(power.power[0])
        y = treated.mean(axis=0)
        detected.append(results_p_value(injected(y, post, design.effect), donors, post) <= ALPHA)
        false_positive.append(results_p_value(y, donors, post) <= ALPHA)
    return Replications(np.array(predicted), np.array(detected, dtype=float), np.array(false_positive, dtype=float))


def test_simulated_treated_markets_lie_inside_the_donors_range() -> None:
    """The synthetic control can fit the treated average: its effective loadings are inside the donors'."""
    for design in DESIGNS:
        markets = PanelModel(n_treated=design.n_treated).markets(design.seed)
        for loading in markets.effective_loadings():
            treated, donors = loading[markets.treated].mean(), loading[markets.donors]
            assert donors.min() < treated < donors.max()


@pytest.mark.parametrize("design", DESIGNS, ids=lambda d: f"{d.n_treated}markets-{d.duration}days")
def test_predicted_power_matches_the_real_tests_detection_rate_on_fresh_panels(design: Design) -> None:
    """The product's promise: the power predicted from the history is the rate the real test then detects.

    1,500 replications: the observed rate's standard error is about 0.012; the tolerance is issue 23's, 3 points
    plus 2 standard errors (0.054).
    """
    runs = replicate(design)
    predicted, observed = float(runs.predicted.mean()), float(runs.detected.mean())
    standard_error = float(runs.detected.std(ddof=1) / np.sqrt(runs.detected.size))
    message = f"{design}: mean predicted {predicted:.3f}, observed {observed:.3f} +- {standard_error:.3f}"
    assert 0.55 <= predicted <= 0.9, message  # the regime the design is meant to check
    assert abs(predicted - observed) <= 0.03 + 2.0 * standard_error, message


@pytest.mark.parametrize("design", DESIGNS, ids=lambda d: f"{d.n_treated}markets-{d.duration}days")
def test_real_test_false_positive_rate_on_fresh_panels_is_at_most_alpha_plus_2pp(design: Design) -> None:
    """No effect: the real test rejects at most alpha + 2 pp (standard error about 0.008 at 1,500 panels)."""
    runs = replicate(design)
    rate = float(runs.false_positive.mean())
    assert rate <= ALPHA + 0.02, f"{design}: false-positive rate {rate:.3f}"


@pytest.mark.parametrize("design", DESIGNS, ids=lambda d: f"{d.n_treated}markets-{d.duration}days")
def test_predicted_power_varies_with_the_history(design: Design) -> None:
    """The prediction is conditional on the history: it is graded, not 0/1, and varies across histories."""
    predicted = replicate(design).predicted
    assert np.all((predicted >= 0.0) & (predicted <= 1.0))
    assert np.mean((predicted > 0.0) & (predicted < 1.0)) >= 0.5
    assert predicted.std() >= 0.05, f"{design}: sd of predicted power {predicted.std():.3f}"


# --- Issue 23's process: trending markets, 180- and 90-day histories, one treated market of 21 --------------

# 21 markets of lognormal sizes, the one nearest the median treated, the shared AR(0.9) trend, weekly
# pattern, AR(1) noise (rho 0.3, sd 0.15 of the level), 15-day tests, 20 lookback windows, alpha 5%; "trending"
# adds a shared growth of 0.3% a day (+54% over the history).  Before the drift was kept in place
# (stats.geo.power's docstring), the trending process read predicted 0.047 / 0.123 / 0.344 / 0.643 against
# realized 0.080 / 0.213 / 0.416 / 0.671 (150 histories, 3 futures, seed 23: 9.0 points low at 5%, SE 2.3);
# with the drift kept, 0.056 / 0.159 / 0.404 / 0.688; since the test runs on the panel deflated by the donors'
# level (stats.geo.conformal), predicted 0.048 / 0.129 / 0.366 / 0.677 against realized 0.049 / 0.156 / 0.371 / 0.638.
# With 90-day histories the designs predicted at 80-100% then detected 24 points less (17 designs, SE 7.7), out of
# the bin target; since the drift is shifted with the noise and the noise scale integrated over its uncertainty
# (2026-12-08), 0.047 / 0.125 / 0.347 / 0.641 (180 days) and every bin within target at 90 days too.
ISSUE_PROCESSES = {
    "trending": PanelModel(n_markets=21, n_treated=1, noise_ar=0.3, noise_sd=0.15, growth=0.003),
    "stationary": PanelModel(n_markets=21, n_treated=1, noise_ar=0.3, noise_sd=0.15),
}
# row -> (process, history days)
ISSUE_ROWS = {
    "trending": ("trending", 180),
    "stationary": ("stationary", 180),
    "trending-90-days": ("trending", 90),
}


@functools.cache
def issue_calibration(row: str) -> tuple[list[tuple[str, bool, str]], list[tuple[str, bool, str]]]:
    process, history_days = ISSUE_ROWS[row]
    result = calibrate_power(
        ISSUE_PROCESSES[process],
        history_days=history_days,
        duration=15,
        effects=(0.0, 0.05, 0.1, 0.15),
        histories=150,
        futures=3,
        lookback_windows=20,
        alpha=0.05,
        seed=23,
    )

    def rows(agreements: list[Agreement]) -> list[tuple[str, bool, str]]:
        return [
            (
                a.label,
                a.within,
                f"{a.label}: predicted {a.predicted:.3f}, realized {a.realized:.3f} +- {a.standard_error:.3f}",
            )
            for a in agreements
        ]

    return rows(result.by_effect()), rows(result.by_bin())


@pytest.mark.parametrize("row", sorted(ISSUE_ROWS))
def test_mean_predicted_power_per_effect_is_the_realized_rate_within_3_points_and_2_se(row: str) -> None:
    """Issue 23's target per effect (0, 5, 10, 15%): |mean predicted - realized| <= 0.03 + 2 SE (450 futures)."""
    by_effect, _ = issue_calibration(row)
    assert len(by_effect) == 4
    assert all(within for _, within, _ in by_effect), [message for _, _, message in by_effect]


@pytest.mark.parametrize("row", sorted(ISSUE_ROWS))
def test_binned_predicted_power_is_the_realized_rate_within_8_points_and_2_se(row: str) -> None:
    """Issue 23's target by bin of predicted power (0-20%, ..., 80-100%): within 0.08 + 2 SE."""
    _, by_bin = issue_calibration(row)
    assert len(by_bin) >= 4  # the designs span the range
    assert all(within for _, within, _ in by_bin), [message for _, _, message in by_bin]
