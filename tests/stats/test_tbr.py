"""Tests for stats.geo.tbr (Time-Based Regression, Kerman, Wang & Vaver 2017).

Expected numbers come from three places, named at each use:

* an independent statsmodels OLS oracle computed inside the test (``sm.OLS(...).fit()``, its
  ``get_prediction(...).summary_frame()`` and ``cov_params()``);
* the R TBR package's values that Google's matched_markets hard-codes in
  ``matched_markets/tests/test_tbr.py`` and ``test_tbr_iroas.py`` for this very data set
  (``salesandcost.csv`` + ``geoassignment.csv``, pre-period to 2015-02-15, test
  2015-02-16..2015-03-15, no cool-down);
* closed-form arithmetic on small hand-made series.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import statsmodels.api as sm
from scipy import stats

from stats.errors import InvalidProblem
from stats.geo.tbr import TBRResult, _ci_status, estimate_tbr, tbr_effect_batch
from stats.geo.tbr_conformal import held_out_window_sums

DATA = Path(__file__).resolve().parents[1] / "data" / "matched_markets"
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class GeoExperiment:
    dates: npt.NDArray[np.datetime64]
    treated_sales: FloatArray
    control_sales: FloatArray
    treated_cost: FloatArray
    n_treated_geos: int
    pre: slice
    post: slice


def _load_salesandcost() -> GeoExperiment:
    with (DATA / "geoassignment.csv").open(newline="") as handle:
        group = {row["geo"]: int(row["geo.group"]) for row in csv.DictReader(handle)}
    with (DATA / "salesandcost.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    day = np.array([row["date"] for row in rows], dtype="datetime64[D]")
    dates, day_index = np.unique(day, return_inverse=True)
    is_treated = np.array([group[row["geo"]] == 2 for row in rows])
    sales = np.array([float(row["sales"]) for row in rows])
    cost = np.array([float(row["cost"]) for row in rows])

    def daily(values: FloatArray, mask: npt.NDArray[np.bool_]) -> FloatArray:
        return np.bincount(day_index[mask], weights=values[mask], minlength=dates.size).astype(np.float64)

    pre_end = int(np.searchsorted(dates, np.datetime64("2015-02-15"), side="right"))
    test_end = int(np.searchsorted(dates, np.datetime64("2015-03-15"), side="right"))
    return GeoExperiment(
        dates=dates,
        treated_sales=daily(sales, is_treated),
        control_sales=daily(sales, ~is_treated),
        treated_cost=daily(cost, is_treated),
        n_treated_geos=sum(1 for g in group.values() if g == 2),
        pre=slice(0, pre_end),
        post=slice(pre_end, test_end),
    )


@pytest.fixture(scope="module")
def experiment() -> GeoExperiment:
    return _load_salesandcost()


@pytest.fixture(scope="module")
def incremental_cost(experiment: GeoExperiment) -> float:
    return float(experiment.treated_cost[experiment.post].sum())


def _analyse(experiment: GeoExperiment, level: float, cost: float | None = None) -> TBRResult:
    return estimate_tbr(
        experiment.treated_sales,
        experiment.control_sales,
        experiment.pre,
        experiment.post,
        level,
        cost,
        n_treated_geos=experiment.n_treated_geos,
        method="kerman",
    )


class StatsmodelsOracle:
    """Independent oracle: statsmodels OLS on the pre-period, predictions over the test days."""

    def __init__(self, experiment: GeoExperiment) -> None:
        x_pre = sm.add_constant(experiment.control_sales[experiment.pre])
        self.model = sm.OLS(experiment.treated_sales[experiment.pre], x_pre).fit()
        self.x_test = sm.add_constant(experiment.control_sales[experiment.post], has_constant="add")
        self.y_test = experiment.treated_sales[experiment.post]
        self.prediction = self.model.get_prediction(self.x_test)

    def cumulative_effect(self) -> float:
        return float((self.y_test - self.prediction.predicted_mean).sum())

    def cumulative_se(self) -> float:
        # Var(sum of n new observations' prediction errors) = n sigma^2 + s' Cov(theta) s.
        s = self.x_test.sum(axis=0)
        cov = np.asarray(self.model.cov_params())
        return float(np.sqrt(len(self.y_test) * self.model.scale + s @ cov @ s))

    def interval(self, level: float) -> tuple[float, float]:
        q = stats.t.ppf(0.5 + level / 2, self.model.df_resid)
        d, se = self.cumulative_effect(), self.cumulative_se()
        return d - q * se, d + q * se


@pytest.fixture(scope="module")
def oracle(experiment: GeoExperiment) -> StatsmodelsOracle:
    return StatsmodelsOracle(experiment)


# --- the reference data set itself ---------------------------------------------------------------


def test_reference_data_has_42_pre_days_28_test_days_and_50000_of_incremental_cost(
    experiment: GeoExperiment, incremental_cost: float
) -> None:
    # matched_markets examples/salesandcost.py dates and test_tbr_iroas.py r_incr_cost = 50000.
    assert experiment.dates[experiment.pre][[0, -1]].tolist() == [
        np.datetime64("2015-01-05").item(),
        np.datetime64("2015-02-15").item(),
    ]
    assert experiment.dates[experiment.post][[0, -1]].tolist() == [
        np.datetime64("2015-02-16").item(),
        np.datetime64("2015-03-15").item(),
    ]
    assert incremental_cost == pytest.approx(50000.0, abs=1e-6)
    assert experiment.n_treated_geos == 50


# --- agreement with the statsmodels oracle -------------------------------------------------------


def test_pre_period_fit_matches_statsmodels_ols(experiment: GeoExperiment, oracle: StatsmodelsOracle) -> None:
    fit = _analyse(experiment, 0.9).fit
    assert fit.intercept == pytest.approx(oracle.model.params[0], rel=1e-10)
    assert fit.slope == pytest.approx(oracle.model.params[1], rel=1e-10)
    assert fit.sigma == pytest.approx(np.sqrt(oracle.model.scale), rel=1e-10)
    assert fit.df == oracle.model.df_resid == 40
    assert fit.r_squared == pytest.approx(oracle.model.rsquared, rel=1e-10)
    assert fit.rmse == pytest.approx(np.sqrt(oracle.model.ssr / oracle.model.nobs), rel=1e-10)


def test_slope_matches_the_r_tbr_package_value_quoted_by_matched_markets(
    experiment: GeoExperiment,
) -> None:
    # matched_markets tests/test_tbr.py: "Slope coefficient under the R package" 0.9997001.
    assert _analyse(experiment, 0.9).fit.slope == pytest.approx(0.9997001, abs=5e-8)


def test_cumulative_effect_and_interval_match_statsmodels_to_1e_8(
    experiment: GeoExperiment, oracle: StatsmodelsOracle
) -> None:
    result = _analyse(experiment, 0.9)
    low, high = oracle.interval(0.9)
    assert result.incremental.estimate == pytest.approx(oracle.cumulative_effect(), rel=1e-8)
    assert result.standard_error == pytest.approx(oracle.cumulative_se(), rel=1e-8)
    assert result.incremental.ci_low == pytest.approx(low, rel=1e-8)
    assert result.incremental.ci_high == pytest.approx(high, rel=1e-8)


def test_cumulative_interval_matches_statsmodels_at_95_percent(
    experiment: GeoExperiment, oracle: StatsmodelsOracle
) -> None:
    result = _analyse(experiment, 0.95)
    low, high = oracle.interval(0.95)
    assert (result.incremental.ci_low, result.incremental.ci_high) == pytest.approx((low, high), rel=1e-8)


def test_counterfactual_and_pointwise_bands_match_statsmodels_prediction_intervals(
    experiment: GeoExperiment, oracle: StatsmodelsOracle
) -> None:
    series = _analyse(experiment, 0.8).series
    frame = oracle.prediction.summary_frame(alpha=0.2)
    np.testing.assert_allclose(series.counterfactual, frame["mean"], rtol=1e-10)
    np.testing.assert_allclose(series.ci_low, frame["obs_ci_lower"], rtol=1e-10)
    np.testing.assert_allclose(series.ci_high, frame["obs_ci_upper"], rtol=1e-10)
    np.testing.assert_allclose(series.observed, oracle.y_test, rtol=0)
    np.testing.assert_allclose(series.effect, oracle.y_test - frame["mean"], rtol=1e-10)


def test_pre_period_fitted_values_match_statsmodels(experiment: GeoExperiment, oracle: StatsmodelsOracle) -> None:
    series = _analyse(experiment, 0.9).series
    np.testing.assert_allclose(series.pre_fitted, oracle.model.fittedvalues, rtol=1e-10)
    np.testing.assert_allclose(series.pre_observed, experiment.treated_sales[experiment.pre])


def test_two_sided_p_value_matches_statsmodels_t_test_of_the_summed_prediction_error(
    experiment: GeoExperiment, oracle: StatsmodelsOracle
) -> None:
    t_stat = oracle.cumulative_effect() / oracle.cumulative_se()
    expected = 2 * stats.t.sf(abs(t_stat), oracle.model.df_resid)
    assert _analyse(experiment, 0.9).p_value == pytest.approx(expected, rel=1e-8)


# --- agreement with the published R / matched_markets numbers ------------------------------------


def test_first_test_day_80_percent_counterfactual_band_matches_matched_markets(
    experiment: GeoExperiment,
) -> None:
    # matched_markets tests/test_tbr_iroas.py testPointwiseDifferenceFixedCost (level 0.8, tails 2).
    series = _analyse(experiment, 0.8).series
    assert series.counterfactual[0] == pytest.approx(35110.69194347361, rel=1e-12)
    assert series.ci_low[0] == pytest.approx(34302.50979221002, rel=1e-10)
    assert series.ci_high[0] == pytest.approx(35918.87409473002, rel=1e-10)
    assert series.cumulative_effect[0] == pytest.approx(5558.818056526405, rel=1e-12)
    assert series.cumulative_ci_low[0] == pytest.approx(4750.63590527, rel=1e-10)
    assert series.cumulative_ci_high[0] == pytest.approx(6367.00020779, rel=1e-10)


def test_incremental_response_matches_the_r_tbr_package(experiment: GeoExperiment) -> None:
    # matched_markets tests/test_tbr_iroas.py: r_incr_resp = 147337.122.
    assert _analyse(experiment, 0.9).incremental.estimate == pytest.approx(147337.122, abs=1e-3)


def test_one_sided_90_percent_iroas_matches_the_r_tbr_package(
    experiment: GeoExperiment, incremental_cost: float
) -> None:
    # matched_markets tests/test_tbr_iroas.py testFixedCostIROASSummary (level 0.9, tails 1):
    # estimate 2.946742, precision 0.120548, lower 2.826194, upper inf, P(Delta > 0) = 1.
    one_sided = _analyse(experiment, 0.9, incremental_cost).one_sided
    assert one_sided.iroas is not None and one_sided.iroas.ci_low is not None
    assert one_sided.iroas.estimate == pytest.approx(2.946742, abs=1e-6)
    assert one_sided.iroas.ci_low == pytest.approx(2.826194, abs=1e-6)
    assert one_sided.iroas.estimate - one_sided.iroas.ci_low == pytest.approx(0.120548, abs=1e-6)
    assert one_sided.iroas.ci_high is None
    assert one_sided.incremental.ci_low == pytest.approx(2.826194 * 50000, abs=0.05)
    assert 1.0 - one_sided.p_value == pytest.approx(1.0, abs=1e-6)


def test_one_sided_relative_lift_matches_the_r_tbr_package_within_its_simulation_noise(
    experiment: GeoExperiment,
) -> None:
    # matched_markets tests/test_tbr_iroas.py: r_lift = 0.173998, r_lift_lower = 0.165686, from
    # 10,000 simulated draws; matched_markets itself only asserts them to 1e-4.
    one_sided = _analyse(experiment, 0.9).one_sided
    assert one_sided.relative.estimate == pytest.approx(0.173998, abs=1e-4)
    assert one_sided.relative.ci_low == pytest.approx(0.165686, abs=1e-4)
    assert one_sided.relative.ci_high is None


def test_two_sided_90_percent_iroas_and_lift_match_the_r_tbr_package_within_simulation_noise(
    experiment: GeoExperiment, incremental_cost: float
) -> None:
    # matched_markets tests/test_tbr_iroas.py testVariableCostIROASSummaryTwoTails (R values from
    # a simulation with jittered costs): iROAS 2.79135..3.102936, lift 0.163273..0.184885.
    result = _analyse(experiment, 0.9, incremental_cost)
    assert result.iroas is not None
    assert result.iroas.ci_low == pytest.approx(2.79135, abs=1e-3)
    assert result.iroas.ci_high == pytest.approx(3.102936, abs=1e-3)
    assert result.relative.ci_low == pytest.approx(0.163273, abs=1e-4)
    assert result.relative.ci_high == pytest.approx(0.184885, abs=1e-4)


# --- definitions of the derived quantities --------------------------------------------------------


def test_iroas_is_the_incremental_interval_divided_by_the_incremental_cost(
    experiment: GeoExperiment, incremental_cost: float
) -> None:
    result = _analyse(experiment, 0.9, incremental_cost)
    assert result.iroas is not None
    assert result.incremental.ci_low is not None and result.incremental.ci_high is not None
    assert result.iroas.estimate == pytest.approx(result.incremental.estimate / incremental_cost)
    assert result.iroas.ci_low == pytest.approx(result.incremental.ci_low / incremental_cost)
    assert result.iroas.ci_high == pytest.approx(result.incremental.ci_high / incremental_cost)


def test_iroas_bounds_swap_for_a_negative_incremental_cost(experiment: GeoExperiment) -> None:
    result = _analyse(experiment, 0.9, -50000.0)
    assert result.iroas is not None
    assert result.incremental.ci_low is not None and result.incremental.ci_high is not None
    assert result.iroas.ci_low == pytest.approx(result.incremental.ci_high / -50000.0)
    assert result.iroas.ci_high == pytest.approx(result.incremental.ci_low / -50000.0)


def test_iroas_is_absent_without_a_cost(experiment: GeoExperiment) -> None:
    result = _analyse(experiment, 0.9)
    assert result.iroas is None
    assert result.one_sided.iroas is None


def test_att_is_the_incremental_per_test_day_per_treated_geo(experiment: GeoExperiment) -> None:
    result = _analyse(experiment, 0.9)
    scale = 28 * 50
    assert result.att.estimate == pytest.approx(result.incremental.estimate / scale, rel=1e-12)
    assert result.incremental.ci_low is not None and result.incremental.ci_high is not None
    assert result.att.ci_low == pytest.approx(result.incremental.ci_low / scale, rel=1e-12)
    assert result.att.ci_high == pytest.approx(result.incremental.ci_high / scale, rel=1e-12)


def test_relative_is_incremental_over_counterfactual_total(
    experiment: GeoExperiment, oracle: StatsmodelsOracle
) -> None:
    result = _analyse(experiment, 0.9)
    counterfactual_total = float(oracle.prediction.predicted_mean.sum())
    assert result.counterfactual_total == pytest.approx(counterfactual_total, rel=1e-10)
    assert result.relative.estimate == pytest.approx(oracle.cumulative_effect() / counterfactual_total, rel=1e-8)


def test_last_cumulative_band_equals_the_incremental_interval(experiment: GeoExperiment) -> None:
    result = _analyse(experiment, 0.9)
    assert result.series.cumulative_effect[-1] == pytest.approx(result.incremental.estimate)
    assert result.series.cumulative_ci_low[-1] == pytest.approx(result.incremental.ci_low)
    assert result.series.cumulative_ci_high[-1] == pytest.approx(result.incremental.ci_high)


def test_series_arrays_are_read_only(experiment: GeoExperiment) -> None:
    series = _analyse(experiment, 0.9).series
    with pytest.raises(ValueError):
        series.counterfactual[0] = 0.0


def test_days_between_pre_and_test_windows_and_after_the_test_are_ignored() -> None:
    rng = np.random.default_rng(7)
    control = 100 + rng.normal(0, 5, 60)
    treated = 10 + 2 * control + rng.normal(0, 1, 60)
    base = estimate_tbr(treated, control, slice(0, 30), slice(35, 50), 0.9)
    noisy = treated.copy()
    noisy[30:35] += 1e6
    noisy[50:] = np.nan
    shifted = estimate_tbr(noisy, control, slice(0, 30), slice(35, 50), 0.9)
    assert (shifted.incremental, shifted.p_value, shifted.fit) == (
        base.incremental,
        base.p_value,
        base.fit,
    )


def test_exact_line_with_added_effect_recovers_the_effect_by_hand() -> None:
    # Pre-period exactly y = 5 + 2x (sigma = 0); test days get +3 each: Delta = 3 * 4 = 12.
    control = np.array([1.0, 2.0, 4.0, 3.0, 6.0, 5.0, 2.0, 7.0, 1.0])
    treated = 5 + 2 * control
    treated[5:] += 3.0
    result = estimate_tbr(treated, control, slice(0, 5), slice(5, 9), 0.9, 6.0)
    assert result.fit.intercept == pytest.approx(5.0)
    assert result.fit.slope == pytest.approx(2.0)
    assert result.incremental.estimate == pytest.approx(12.0)
    assert result.iroas is not None and result.iroas.estimate == pytest.approx(2.0)
    assert result.standard_error == pytest.approx(0.0, abs=1e-9)


def test_variance_follows_the_closed_form_for_a_hand_sized_problem() -> None:
    # T0 = 4 pre days x = 0,1,2,3 (xbar 1.5, Sxx 5), y residuals +-1 around y = x:
    # y = 1, 0, 3, 2 -> slope 0.6, intercept 0.6, SSE 3.2, sigma^2 = 1.6.
    # Test days x = 4, 5 -> sum (x - xbar) = 6; Var = 1.6 * (2 + 4/4 + 36/5) = 16.32.
    control = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    treated = np.array([1.0, 0.0, 3.0, 2.0, 10.0, 10.0])
    result = estimate_tbr(treated, control, slice(0, 4), slice(4, 6), 0.9)
    assert result.fit.slope == pytest.approx(0.6)
    assert result.fit.intercept == pytest.approx(0.6)
    assert result.fit.sigma == pytest.approx(np.sqrt(1.6))
    assert result.standard_error == pytest.approx(np.sqrt(16.32))
    assert result.incremental.estimate == pytest.approx(20 - (0.6 * 2 + 0.6 * 9))


# --- p-value and interval consistency --------------------------------------------------------------


def test_interval_excludes_zero_exactly_when_p_value_is_below_alpha() -> None:
    rng = np.random.default_rng(11)
    control = 200 + 20 * rng.standard_normal((300, 40))
    treated = 30 + 0.8 * control + 5 * rng.standard_normal((300, 40))
    treated[:, 30:] += rng.uniform(-6, 6, (300, 1))
    outcomes = set()
    for row in range(300):
        result = estimate_tbr(treated[row], control[row], slice(0, 30), slice(30, 40), 0.9)
        assert result.incremental.ci_low is not None and result.incremental.ci_high is not None
        excludes_zero = result.incremental.ci_low > 0 or result.incremental.ci_high < 0
        assert excludes_zero == (result.p_value < 0.1)
        outcomes.add(excludes_zero)
    assert outcomes == {True, False}


def test_one_sided_p_value_is_the_upper_tail_of_the_same_t_distribution(
    experiment: GeoExperiment,
) -> None:
    result = _analyse(experiment, 0.9)
    t_stat = result.incremental.estimate / result.standard_error
    assert result.one_sided.p_value == pytest.approx(stats.t.sf(t_stat, 40))
    assert result.p_value == pytest.approx(2 * min(result.one_sided.p_value, 1 - result.one_sided.p_value))


def test_batch_function_reproduces_the_single_series_estimate() -> None:
    rng = np.random.default_rng(3)
    control = 500 + 50 * rng.standard_normal((5, 50))
    treated = 0.5 * control + 10 * rng.standard_normal((5, 50))
    delta, se, df = tbr_effect_batch(treated, control, slice(0, 35), slice(35, 50))
    assert df == 33
    for row in range(5):
        single = estimate_tbr(treated[row], control[row], slice(0, 35), slice(35, 50), 0.9)
        assert delta[row] == pytest.approx(single.incremental.estimate, rel=1e-12)
        assert se[row] == pytest.approx(single.standard_error, rel=1e-12)


# --- calibration by simulation --------------------------------------------------------------------


def _simulate(rng: np.random.Generator, reps: int, effect_per_day: float) -> tuple[FloatArray, FloatArray]:
    """Control: weekly seasonality + AR(1) level; treated: linear in control + iid noise."""
    days, phi = 70, 0.7
    innovations = rng.normal(0.0, 30.0, (reps, days))
    ar = np.empty_like(innovations)
    ar[:, 0] = innovations[:, 0] / np.sqrt(1 - phi**2)
    for t in range(1, days):
        ar[:, t] = phi * ar[:, t - 1] + innovations[:, t]
    weekly = 80.0 * np.sin(2 * np.pi * np.arange(days) / 7)
    control = 1000.0 + weekly + ar
    treated = 50.0 + 0.9 * control + rng.normal(0.0, 20.0, (reps, days))
    treated[:, 42:] += effect_per_day
    return treated, control


PRE, POST, REPS = slice(0, 42), slice(42, 70), 4000


@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_false_positive_rate_under_zero_effect_is_at_most_alpha_plus_2pp(alpha: float) -> None:
    treated, control = _simulate(np.random.default_rng(20240501), REPS, 0.0)
    delta, se, df = tbr_effect_batch(treated, control, PRE, POST)
    p_values = 2 * stats.t.sf(np.abs(delta / se), df)
    assert np.mean(p_values < alpha) <= alpha + 0.02


def test_one_sided_false_positive_rate_under_zero_effect_is_at_most_alpha_plus_2pp() -> None:
    treated, control = _simulate(np.random.default_rng(99), REPS, 0.0)
    delta, se, df = tbr_effect_batch(treated, control, PRE, POST)
    assert np.mean(stats.t.sf(delta / se, df) < 0.1) <= 0.12


def test_interval_covers_a_known_effect_at_the_nominal_rate_within_3pp() -> None:
    effect_per_day = 15.0
    treated, control = _simulate(np.random.default_rng(12345), REPS, effect_per_day)
    delta, se, df = tbr_effect_batch(treated, control, PRE, POST)
    q = stats.t.ppf(0.95, df)
    truth = effect_per_day * 28
    coverage = np.mean((delta - q * se <= truth) & (truth <= delta + q * se))
    assert abs(coverage - 0.9) <= 0.03
    assert abs(np.mean(delta) - truth) < 3 * np.std(delta) / np.sqrt(REPS)


# --- refused inputs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"confidence_level": 1.0}, "confidence_level"),
        ({"confidence_level": 0.0}, "confidence_level"),
        ({"incremental_cost": 0.0}, "incremental_cost"),
        ({"incremental_cost": float("nan")}, "incremental_cost"),
        ({"pre_slice": slice(0, 2)}, "pre_slice"),
        ({"pre_slice": slice(0, 10, 2)}, "pre_slice"),
        ({"post_slice": slice(20, 20)}, "post_slice"),
        ({"post_slice": slice(8, 20)}, "post_slice"),
        ({"control": np.ones(20)}, "control"),
        ({"control": np.arange(19.0)}, "control"),
        ({"n_treated_geos": 0}, "n_treated_geos"),
    ],
)
def test_unusable_inputs_are_refused_naming_the_field(kwargs: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {
        "treated": np.arange(20.0) ** 1.5,
        "control": np.arange(20.0),
        "pre_slice": slice(0, 10),
        "post_slice": slice(10, 20),
        "confidence_level": 0.9,
    }
    arguments.update(kwargs)
    with pytest.raises(InvalidProblem) as raised:
        estimate_tbr(**arguments)  # type: ignore[arg-type]
    assert raised.value.field == field


def test_missing_value_inside_the_test_window_is_refused() -> None:
    treated = np.arange(20.0) ** 1.5
    treated[15] = np.nan
    with pytest.raises(InvalidProblem) as raised:
        estimate_tbr(treated, np.arange(20.0), slice(0, 10), slice(10, 20), 0.9)
    assert raised.value.field == "treated"
    assert "test period" in raised.value.reason


# --- the autocorrelation-robust (block-permutation conformal) interval ---------------------------


def _ar1_series(rng: np.random.Generator, rho: float, days: int) -> FloatArray:
    noise = rng.standard_normal(days)
    out = np.empty(days)
    out[0] = noise[0]
    for t in range(1, days):
        out[t] = rho * out[t - 1] + np.sqrt(1 - rho**2) * noise[t]
    return out


def _autocorrelated_problem(seed: int, rho: float, effect: float = 0.0) -> tuple[FloatArray, FloatArray]:
    rng = np.random.default_rng(seed)
    control = 1000 + 60 * np.sin(2 * np.pi * np.arange(70) / 7) + 40 * _ar1_series(rng, 0.8, 70)
    treated = 100 + 0.5 * control + 10 * _ar1_series(rng, rho, 70)
    treated[56:] += effect
    return treated, control


def _held_out_window_statistics(treated: FloatArray, control: FloatArray, n_pre: int, theta: float) -> FloatArray:
    """Independent oracle: for every cyclic shift (np.roll), statsmodels OLS on the days outside the test
    window's position under H0, its prediction errors summed over that position, over the control there
    and over the root of the sum's prediction-error variance factor ``d + s' (X'X)^-1 s`` (``s`` the
    window's column sums of ``[1, x]``, ``(X'X)^-1`` statsmodels' ``normalized_cov_params``)."""
    days = treated.size
    d = days - n_pre
    shifted = treated.copy()
    shifted[n_pre:] -= theta / d
    statistics = []
    for k in range(days):
        y, x = np.roll(shifted, -k), np.roll(control, -k)
        fit = sm.OLS(y[:n_pre], sm.add_constant(x[:n_pre])).fit()
        design = sm.add_constant(x[n_pre:], has_constant="add")
        errors = y[n_pre:] - fit.predict(design)
        s = design.sum(axis=0)
        variance_factor = d + s @ fit.normalized_cov_params @ s
        statistics.append(errors.sum() / x[n_pre:].sum() / np.sqrt(variance_factor))
    return np.asarray(statistics)


def _brute_force_block_p_value(treated: FloatArray, control: FloatArray, n_pre: int, theta: float) -> float:
    """The two-sided p-value of ``Delta = theta`` from :func:`_held_out_window_statistics`."""
    sums = np.abs(_held_out_window_statistics(treated, control, n_pre, theta))
    return float(np.mean(sums >= sums[0] * (1 - 1e-9)))


def test_default_method_is_the_block_conformal_test_with_the_same_point_estimate(
    experiment: GeoExperiment,
) -> None:
    default = estimate_tbr(experiment.treated_sales, experiment.control_sales, experiment.pre, experiment.post, 0.9)
    kerman = _analyse(experiment, 0.9)
    assert (default.method, kerman.method) == ("conformal", "kerman")
    assert default.incremental.estimate == kerman.incremental.estimate
    assert default.standard_error == kerman.standard_error
    np.testing.assert_array_equal(default.series.counterfactual, kerman.series.counterfactual)
    # 70 analysed days: the smallest p-value a block-permutation test can give is 1/70.
    assert default.p_value == pytest.approx(1 / 70)


@pytest.mark.parametrize(("seed", "rho", "effect"), [(1, 0.0, 0.0), (2, 0.5, 3.0), (3, 0.7, -2.0), (4, 0.3, 8.0)])
def test_conformal_p_value_matches_a_brute_force_statsmodels_permutation_oracle(
    seed: int, rho: float, effect: float
) -> None:
    treated, control = _autocorrelated_problem(seed, rho, effect)
    result = estimate_tbr(treated, control, slice(0, 56), slice(56, 70), 0.9)
    assert result.p_value == pytest.approx(_brute_force_block_p_value(treated, control, 56, 0.0), abs=1e-12)
    # The one-sided test counts signed statistics: shifts at least as large as the observed one.
    signed = _held_out_window_statistics(treated, control, 56, 0.0)
    assert result.one_sided.p_value == pytest.approx(np.mean(signed >= signed[0] - 1e-9 * abs(signed[0])))


@pytest.mark.parametrize(("seed", "theta"), [(13, 0.0), (14, 250.0), (15, -40.0)])
def test_window_sums_are_each_windows_held_out_errors_over_its_level_and_prediction_standard_deviation(
    seed: int, theta: float
) -> None:
    # a_k - theta b_k is every window's signed statistic as the statsmodels re-fit gives it, on a growing
    # control, where the test window's sum is an extrapolation of the line.
    treated, control = _autocorrelated_problem(seed, 0.4)
    growth = np.exp(0.004 * np.arange(70))
    treated, control = treated * growth, control * growth
    a, b = held_out_window_sums(treated[None, :], control[None, :], 14)
    expected = _held_out_window_statistics(treated, control, 56, theta)
    np.testing.assert_allclose(a[0] - theta * b[0], expected, rtol=1e-8, atol=1e-10 * np.abs(expected).max())


def test_window_statistics_are_not_level_scaled_when_some_window_of_the_control_sums_to_zero_or_less() -> None:
    # A control centred on 0 (a difference series, say) is no level to scale by: every c_k is then 1
    # (the studentization stays).
    treated, control = _autocorrelated_problem(12, 0.3)
    control = control - control.mean()
    scaled = _held_out_window_statistics(treated, control, 56, 0.0)
    windows = np.array([np.roll(control, -k)[56:].sum() for k in range(70)])
    assert (windows <= 0).any()
    a, _ = held_out_window_sums(treated[None, :], control[None, :], 14)
    np.testing.assert_allclose(a[0], scaled * windows, rtol=1e-8)


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_conformal_interval_ends_are_where_the_brute_force_test_starts_rejecting(seed: int) -> None:
    # The interval inverts the test exactly: its ends are accepted, anything beyond them rejected.
    treated, control = _autocorrelated_problem(seed, 0.5, 4.0)
    result = estimate_tbr(treated, control, slice(0, 56), slice(56, 70), 0.8)
    low, high = result.incremental.ci_low, result.incremental.ci_high
    assert low is not None and high is not None
    step = 1e-6 * (high - low)
    assert _brute_force_block_p_value(treated, control, 56, low) > 0.2 - 1e-12
    assert _brute_force_block_p_value(treated, control, 56, high) > 0.2 - 1e-12
    assert _brute_force_block_p_value(treated, control, 56, low - step) <= 0.2
    assert _brute_force_block_p_value(treated, control, 56, high + step) <= 0.2
    one_low = result.one_sided.incremental.ci_low
    assert one_low is not None and low < one_low < result.incremental.estimate + (high - low)


def test_conformal_bands_end_at_the_incremental_interval_and_map_to_att_relative_and_iroas() -> None:
    treated, control = _autocorrelated_problem(8, 0.4, 5.0)
    result = estimate_tbr(treated, control, slice(0, 56), slice(56, 70), 0.9, 140.0, n_treated_geos=2)
    s = result.series
    assert result.incremental.ci_low is not None and result.incremental.ci_high is not None
    assert (s.cumulative_ci_low[-1], s.cumulative_ci_high[-1]) == (
        result.incremental.ci_low,
        result.incremental.ci_high,
    )
    assert np.all(s.ci_low < s.ci_high) and np.all(s.cumulative_ci_low < s.cumulative_ci_high)
    assert result.att.ci_low == pytest.approx(result.incremental.ci_low / 28)
    assert result.iroas is not None and result.iroas.ci_high == pytest.approx(result.incremental.ci_high / 140)
    assert result.relative.ci_low == pytest.approx(
        result.incremental.ci_low / (result.observed_total - result.incremental.ci_low)
    )
    # Day 1's band is the one-day test on the pre-period plus that day: brute force on 57 days.
    day_low = s.observed[0] - s.ci_high[0]
    day_y, day_x = np.append(treated[:56], treated[56]), np.append(control[:56], control[56])
    assert _brute_force_block_p_value(day_y, day_x, 56, day_low) > 0.1 - 1e-12
    assert _brute_force_block_p_value(day_y, day_x, 56, day_low - 1e-6 * abs(day_low)) <= 0.1


@pytest.mark.parametrize("level", [0.8, 0.9, 0.95])
def test_tbr_interval_contains_its_estimate_on_matched_markets_example(experiment: GeoExperiment, level: float) -> None:
    # Issue 23: the all-days fit answered 147,337 with an 80% interval of [125,758, 144,553]. The test
    # now predicts each window from a fit without it, so the test window's statistic is the published
    # estimate's (R TBR package: 147337.122) and vanishes there: p(estimate) = 1.
    result = estimate_tbr(experiment.treated_sales, experiment.control_sales, experiment.pre, experiment.post, level)
    low, high = result.incremental.ci_low, result.incremental.ci_high
    assert result.incremental.estimate == pytest.approx(147337.122, abs=1e-3)
    assert result.ci_status == "interval"
    assert low is not None and high is not None and low < result.incremental.estimate < high
    y = np.concatenate([experiment.treated_sales[experiment.pre], experiment.treated_sales[experiment.post]])
    x = np.concatenate([experiment.control_sales[experiment.pre], experiment.control_sales[experiment.post]])
    assert _brute_force_block_p_value(y, x, 42, result.incremental.estimate) == 1.0
    # The ends are the brute-force test's last accepted effects (at 80%: [132,335, 285,235]).
    step = 1e-6 * (high - low)
    for end, beyond in ((low, low - step), (high, high + step)):
        assert _brute_force_block_p_value(y, x, 42, end) > 1.0 - level - 1e-12
        assert _brute_force_block_p_value(y, x, 42, beyond) <= 1.0 - level


@pytest.mark.parametrize("seed", [5, 6, 7, 8])
def test_conformal_interval_and_its_bands_contain_the_pre_period_fit_estimates(seed: int) -> None:
    treated, control = _autocorrelated_problem(seed, 0.5, 4.0)
    result = estimate_tbr(treated, control, slice(0, 56), slice(56, 70), 0.9)
    s = result.series
    assert result.ci_status == "interval"
    assert result.incremental.ci_low is not None and result.incremental.ci_high is not None
    assert result.incremental.ci_low <= result.incremental.estimate <= result.incremental.ci_high
    assert np.all((s.cumulative_ci_low <= s.cumulative_effect) & (s.cumulative_effect <= s.cumulative_ci_high))
    assert np.all((s.ci_low <= s.counterfactual) & (s.counterfactual <= s.ci_high))


def test_a_non_convex_accepted_set_is_reported_as_its_hull_with_status_non_convex() -> None:
    # 10 pre-period days and 9 test days: the accepted set of the 80% test has a gap, found by the brute
    # force oracle on a grid across the reported hull, whose ends it accepts.
    rng = np.random.default_rng(47)
    sizes = (int(rng.integers(8, 30)), int(rng.integers(2, 12)))
    assert sizes == (10, 9)
    control = 10 + 3 * rng.standard_normal(19) + np.linspace(0, rng.uniform(0, 20), 19)
    treated = 5 + 2 * control + rng.uniform(0.1, 2) * rng.standard_normal(19)
    result = estimate_tbr(treated, control, slice(0, 10), slice(10, 19), 0.8)
    low, high = result.incremental.ci_low, result.incremental.ci_high
    assert result.ci_status == "non_convex" and low is not None and high is not None
    assert any("has gaps" in w for w in result.warnings)
    grid = np.linspace(low, high, 401)
    accepted = np.array([_brute_force_block_p_value(treated, control, 10, theta) > 0.2 for theta in grid])
    assert accepted[0] and accepted[-1] and not accepted.all()


def test_an_interval_that_would_exclude_its_estimate_is_reported_as_not_built() -> None:
    # The status rule behind ci_status: never an interval without its estimate.
    assert _ci_status(10.0, 8.0, 12.0, unbounded=False, convex=True) == "interval"
    assert _ci_status(10.0, 8.0, 12.0, unbounded=False, convex=False) == "non_convex"
    assert _ci_status(10.0, 11.0, 12.0, unbounded=False, convex=True) == "could_not_be_built"
    assert _ci_status(10.0, float("nan"), 12.0, unbounded=False, convex=True) == "could_not_be_built"
    assert _ci_status(10.0, float("nan"), 12.0, unbounded=True, convex=True) == "unbounded"


def test_residual_lag1_autocorrelation_is_reported_from_the_pre_period_residuals(
    experiment: GeoExperiment, oracle: StatsmodelsOracle
) -> None:
    e = np.asarray(oracle.model.resid)
    expected = float(np.sum(e[1:] * e[:-1]) / np.sum(e * e))
    result = _analyse(experiment, 0.9)
    assert result.fit.residual_autocorrelation == pytest.approx(expected, rel=1e-10)
    # 0.227 over 42 days is below the 5% critical value 1.96 / sqrt(42) = 0.302: no warning.
    assert result.fit.residual_autocorrelation == pytest.approx(0.2273, abs=1e-4)
    assert result.warnings == ()


def test_strong_residual_autocorrelation_is_flagged_for_each_method() -> None:
    treated, control = _autocorrelated_problem(9, 0.9)
    kerman = estimate_tbr(treated, control, slice(0, 56), slice(56, 70), 0.9, method="kerman")
    conformal = estimate_tbr(treated, control, slice(0, 56), slice(56, 70), 0.9)
    assert kerman.fit.residual_autocorrelation > 0.5
    assert any("too narrow" in w and "conformal" in w for w in kerman.warnings)
    assert any("strongly serially correlated" in w for w in conformal.warnings)
    calm = estimate_tbr(*_autocorrelated_problem(10, 0.0), slice(0, 56), slice(56, 70), 0.9, method="kerman")
    assert abs(calm.fit.residual_autocorrelation) < 1.96 / np.sqrt(56)
    assert calm.warnings == ()


def test_conformal_interval_is_unbounded_when_too_few_days_to_reach_alpha() -> None:
    # 9 analysed days: the smallest block-permutation p-value is 1/9 > 0.1.
    control = np.array([1.0, 2.0, 4.0, 3.0, 6.0, 5.0, 2.0, 7.0, 1.0])
    treated = 5 + 2 * control + np.array([0.1, -0.2, 0.0, 0.3, -0.1, 3.0, 3.1, 2.9, 3.2])
    result = estimate_tbr(treated, control, slice(0, 5), slice(5, 9), 0.9, 6.0)
    assert (result.incremental.ci_low, result.incremental.ci_high) == (None, None)
    assert result.iroas is not None and (result.iroas.ci_low, result.iroas.ci_high) == (None, None)
    assert result.att.ci_low is None and result.relative.ci_high is None
    assert any("at least 10 days" in w for w in result.warnings)
    assert result.ci_status == "unbounded"


def test_conformal_interval_is_unbounded_when_windows_respond_to_the_effect_like_the_test_window() -> None:
    # 4 test days after 5 pre-period days: placements of the window sharing test days move with a
    # hypothesised effect (b_k) as much as the test window (b_0) once scaled and studentized; when
    # more than alpha T of them do, the test accepts arbitrarily large effects, though 1/9 < 0.2.
    rng = np.random.default_rng(12)
    control = 10 + 3 * rng.standard_normal(44)
    treated = 5 + 2 * control + 0.3 * rng.standard_normal(44)
    treated[40:] += 3.0
    _, b = held_out_window_sums(treated[None, 35:], control[None, 35:], 4)
    assert np.count_nonzero(np.abs(b[0]) >= b[0, 0]) / 9 > 0.2
    short = estimate_tbr(treated[35:], control[35:], slice(0, 5), slice(5, 9), 0.8)
    assert short.ci_status == "unbounded" and short.incremental.ci_high is None
    assert any("a longer pre-period bounds it" in w for w in short.warnings)
    long = estimate_tbr(treated, control, slice(0, 40), slice(40, 44), 0.8)
    assert long.ci_status == "interval"
    assert long.incremental.ci_low is not None and long.incremental.ci_high is not None


def test_an_unknown_interval_method_is_refused() -> None:
    with pytest.raises(InvalidProblem) as raised:
        estimate_tbr(np.arange(20.0) ** 1.5, np.arange(20.0), slice(0, 10), slice(10, 20), 0.9, method="hac")  # type: ignore[arg-type]
    assert raised.value.field == "method"
