"""Tests for stats.geo.trimmed_match (Chen & Au's trimmed match estimator of iROAS).

Expected numbers come from Google's ``trimmed_match`` package (github.com/google/trimmed_match,
Apache-2.0), named at each use:

* ``README.md``'s toy example (5 pairs, 80% interval);
* the package's own unit tests: ``trimmed_match/estimator_test.py`` (Python wrapper),
  ``trimmed_match/core/estimator_test.cc``, ``geox_data_util_test.cc`` and ``math_util_test.cc``
  (C++ core), ``trimmed_match/post_analysis/tests/trimmed_match_post_analysis_test.py``;
* the post-analysis colab guide ``trimmed_match/g3doc/Trimmed_Match_post_analysis_colab_guide.md``
  with its screenshots (``images/image_post_1/2/7/8.png``) of the colab
  (``notebook/post_analysis_colab_for_trimmed_match.ipynb``) run on
  ``example_datasets/example_data_for_post_analysis.csv`` (copied to ``tests/data/trimmed_match``):
  test 2020-11-04..2020-12-01, cool-down to 2020-12-16, pairs 41 and 43 excluded, 80% interval;

plus properties of the definitions and seeded simulations.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats

from stats.errors import InvalidProblem
from stats.geo.trimmed_match import (
    TrimmedMatchResult,
    critical_value,
    relative_lift,
    studentized_trimmed_mean,
    trimmed_match,
    trimmed_match_p_value,
    trimmed_mean_roots,
    trimmed_mean_test_p_value,
)
from stats.intervals import Interval

DATA = Path(__file__).resolve().parents[1] / "data" / "trimmed_match"
FloatArray = npt.NDArray[np.float64]

# estimator_test.py / estimator_test.cc: trimmed_match1_ and the post-analysis test's 4 pairs.
Y4 = [1.0, 10.0, 3.0, 8.0]
X4 = [1.0, 5.0, 2.0, 5.0]
# estimator_test.cc: trimmed_match2_ (32 pairs).
Y32 = [552, -710, -961, -1218, -1293, -1824, 1816, 2073, -2416, -2559, 2603, 3073, 3288, 3137, 4016, 3905,
       4032, -4649, 5397, -6054, 6451, 7735, 8507, -9186, 9700, 9987, -11255, -13828, -14950, 20957, -38666,
       43407]  # fmt: skip
X32 = [89143, -111084, -163240, -201668, -213271, -311807, 313531, 350041, -425882, -439139, 431609, 509310,
       554237, 548335, 677060, 654552, 686768, -812570, 940149, -1019919, 1086827, 1333913, 1458086, -1550027,
       1676807, 1692128, -1927924, -2341819, -2533673, 3570161, -6614810, 7440206]  # fmt: skip
# geox_data_util_test.cc: geox_data_ and geox_data2_ as (delta_response, delta_cost).
GEOX1 = [(3.0, 2.0), (8.0, 5.0), (10.0, 10.0)]
GEOX2 = [(1.5391406, -1.7904224), (1.3765249, -1.3941344), (-1.0470811, -0.9608362), (0.4050382, -0.1808448),
         (-1.1829934, 0.2950698), (-0.1920367, 0.3012471), (-2.1449249, 0.5700090), (0.2685824, 0.7528970),
         (1.0362271, 0.7777585), (-0.2633370, 1.1244019)]  # fmt: skip


def _level(z: float) -> float:
    """Two-sided confidence level whose normal quantile is ``z`` (the C++ core takes ``z`` itself)."""
    return float(2.0 * stats.norm.cdf(z) - 1.0)


def _split(pairs: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    return [p[0] for p in pairs], [p[1] for p in pairs]


# --- README ------------------------------------------------------------------------------------------


def test_readme_example_estimate_and_interval() -> None:
    # README.md: "iroas=1.60, ci=(1.52, 1.66)" for confidence 0.80 (printed with %.2f).
    result = trimmed_match([1, 10, 3, 8, 5], [1, 5, 2, 5, 3], 0.80, quantile="normal")
    assert f"{result.estimate:.2f}" == "1.60"
    assert (f"{result.ci_low:.2f}", f"{result.ci_high:.2f}") == ("1.52", "1.66")


# --- estimator_test.py (Python wrapper) --------------------------------------------------------------


def test_estimator_py_no_trim_report() -> None:
    # estimator_test.py _report_no_trim: estimate sum(y)/sum(x), std_error 0.138, CI (1.250, 1.905), places=3.
    result = trimmed_match(Y4, X4, 0.9, trim_rate=0.0, quantile="normal")
    assert result.estimate == pytest.approx(22.0 / 13.0, abs=5e-4)
    assert result.std_error == pytest.approx(0.138, abs=5e-4)
    assert (result.ci_low, result.ci_high) == pytest.approx((1.250, 1.905), abs=5e-4)
    assert result.trimmed_pairs == ()
    np.testing.assert_allclose(result.residuals, np.array(Y4) - np.array(X4) * 22.0 / 13.0, atol=5e-4)


def test_estimator_py_fixed_trim_report() -> None:
    # estimator_test.py _report_trim1 (trim_rate 0.20): estimate (3+8)/(2+5), std_error 0.041,
    # CI (-29.374, 1.619), trimmed pairs {0, 1}, places=3.
    result = trimmed_match(Y4, X4, 0.9, trim_rate=0.20, quantile="normal")
    assert result.estimate == pytest.approx(11.0 / 7.0, abs=5e-4)
    assert result.std_error == pytest.approx(0.041, abs=5e-4)
    assert (result.ci_low, result.ci_high) == pytest.approx((-29.374, 1.619), abs=5e-4)
    assert result.trimmed_pairs == (0, 1)
    assert result.trim_rate == 0.20


def test_estimator_py_automatic_trim_report() -> None:
    # estimator_test.py _report_auto_trim: trim_rate 0.25 chosen from candidates
    # [[0.0, 1.692, 0.138], [0.25, 1.571, 0.041]], CI (-29.374, 1.619), trimmed pairs {0, 1}.
    result = trimmed_match(Y4, X4, 0.9, max_trim_rate=0.25, quantile="normal")
    assert result.trim_rate == pytest.approx(0.25)
    assert result.estimate == pytest.approx(11.0 / 7.0, abs=5e-4)
    assert (result.ci_low, result.ci_high) == pytest.approx((-29.374, 1.619), abs=5e-4)
    assert result.trimmed_pairs == (0, 1)
    got = np.array([(c.trim_rate, c.estimate, c.std_error) for c in result.candidates])
    np.testing.assert_allclose(got, [[0.0, 1.692, 0.138], [0.25, 1.571, 0.041]], rtol=0, atol=5e-4)


@pytest.mark.parametrize(
    ("response", "spend", "expected"),
    [
        ([1, 2, 3, 4, 5], [1, 1, 1, 1, 1], 3.0),  # testTrimmedMatchTiedSpend
        ([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], 1.0),  # testTrimmedMatchTiedThetas
        ([1, 1, 1, 1, 1], [1, 1, 1, 1, 1], 1.0),  # testTrimmedMatchTiedThetasConstant
    ],
)
def test_estimator_py_ties(response: list[float], spend: list[float], expected: float) -> None:
    # estimator_test.py: tied spend deltas / tied pairwise slopes, default report (confidence 0.80).
    assert trimmed_match(response, spend, 0.80).estimate == pytest.approx(expected)


def test_estimator_py_spend_all_near_zero_is_refused() -> None:
    # estimator_test.py testTrimmedMatchZeroSpend: "delta_spends are all too close to 0!".
    with pytest.raises(InvalidProblem) as info:
        trimmed_match([1, 2, 3, 4, 5], [0, 0, 0, 0, 1e-15], 0.80)
    assert info.value.field == "spend_delta"


# --- estimator_test.cc (C++ core) --------------------------------------------------------------------


def test_estimator_cc_32_pairs_no_trim() -> None:
    # estimator_test.cc TrimmedMatch2NoTrim, z = 1.64485363, tolerance 1e-6.
    result = trimmed_match(Y32, X32, _level(1.64485363), trim_rate=0.0, quantile="normal")
    assert result.estimate == pytest.approx(0.005811, abs=1e-6)
    assert result.std_error == pytest.approx(0.000117, abs=1e-6)
    assert (result.ci_low, result.ci_high) == pytest.approx((0.005233, 0.006389), abs=1e-6)


def test_estimator_cc_32_pairs_fixed_trim() -> None:
    # estimator_test.cc TrimmedMatch2WithTrim (trim rate 1/32), tolerance 1e-6.
    result = trimmed_match(Y32, X32, _level(1.64485363), trim_rate=1.0 / 32, quantile="normal")
    assert result.estimate == pytest.approx(0.005815, abs=1e-6)
    assert result.std_error == pytest.approx(0.000134, abs=1e-6)
    assert (result.ci_low, result.ci_high) == pytest.approx((0.005155, 0.006475), abs=1e-6)


def test_estimator_cc_32_pairs_optimal_trim() -> None:
    # estimator_test.cc TrimmedMatch2WithOptimTrim (max trim rate 0.30): the ten candidates, then the
    # chosen 0.1875 (not the minimum-se 0.25: within (1 + 0.25/sqrt(32)) of it), tolerance 1e-6.
    expected = [
        (0, 0.00581123, 0.000117108), (0.03125, 0.005815, 0.000133689), (0.0625, 0.00582772, 0.000094),
        (0.09375, 0.00583428, 0.000073), (0.125, 0.00583461, 0.000062), (0.15625, 0.00583399, 0.000061),
        (0.1875, 0.00583305, 0.000030), (0.21875, 0.00583258, 0.000031), (0.25, 0.005832, 0.000029),
        (0.28125, 0.00585823, 0.000069),
    ]  # fmt: skip
    result = trimmed_match(Y32, X32, _level(1.64485363), max_trim_rate=0.30, quantile="normal")
    got = np.array([(c.trim_rate, c.estimate, c.std_error) for c in result.candidates])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert result.trim_rate == pytest.approx(0.1875)
    assert result.estimate == pytest.approx(0.005833, abs=1e-6)
    assert result.std_error == pytest.approx(0.00003, abs=1e-6)
    assert (result.ci_low, result.ci_high) == pytest.approx((0.005684, 0.005982), abs=1e-6)


def test_estimator_cc_4_pairs_with_trim() -> None:
    # estimator_test.cc TrimmedMatch1WithTrim: {1.571, 0.041, 0.25, ..., -29.375, 1.619}, tolerance 0.001.
    result = trimmed_match(Y4, X4, _level(1.64485363), trim_rate=0.25, quantile="normal")
    assert result.estimate == pytest.approx(1.571, abs=1e-3)
    assert result.std_error == pytest.approx(0.041, abs=1e-3)
    assert (result.ci_low, result.ci_high) == pytest.approx((-29.375, 1.619), abs=1e-3)


# --- geox_data_util_test.cc and math_util_test.cc (C++ core) ----------------------------------------


def test_geox_util_three_roots_of_the_trimmed_mean_equation() -> None:
    # geox_data_util_test.cc FindAllZerosOfTrimmedMean3Roots: {-9.187, -0.488, 0.560} at trim 0.1, 1e-3;
    # the trimmed sum of the residuals vanishes at each (1e-10).
    y, x = _split(GEOX2)
    roots = trimmed_mean_roots(y, x, 0.1)
    np.testing.assert_allclose(roots, [-9.187, -0.488, 0.560], atol=1e-3)
    for root in roots:
        residuals = np.sort(np.array(y) - root * np.array(x))
        assert abs(residuals[1:-1].sum()) < 1e-10


def test_geox_util_single_root_and_no_root() -> None:
    # geox_data_util_test.cc FindAllZerosOfTrimmedMean1Root (y0 / x0 exactly) and ...0Root (empty);
    # estimator_test.cc CalculateIroasEmptyRoot dies there: refused here, naming the trim rate.
    y, x = _split(GEOX1)
    assert trimmed_mean_roots(y, x, 0.1).tolist() == [3.0 / 2.0]
    assert trimmed_mean_roots([1, 2, 3, 4], [-10, -1, 1, 10], 0.25).size == 0
    with pytest.raises(InvalidProblem) as info:
        trimmed_match([1, 2, 3, 4], [-10, -1, 1, 10], 0.8, trim_rate=0.25)
    assert info.value.field == "trim_rate"


@pytest.mark.parametrize(
    ("pairs", "trim_rate", "z", "expected"),
    [
        (GEOX1, 0.0, 1.645, (0.985, 2.180)),  # RangeFromStudentizedTrimmedMeanNoTrim
        ([*GEOX1, (0.0, 0.0), (20.0, 20.0)], 0.10, 1.645, (0.978, 9.400)),  # ...WithTrim1
        (GEOX2, 0.1, 0.05, (-76.312, 0.898)),  # ...WithTrim2
    ],
)
def test_geox_util_interval_by_test_inversion(
    pairs: list[tuple[float, float]], trim_rate: float, z: float, expected: tuple[float, float]
) -> None:
    # geox_data_util_test.cc RangeFromStudentizedTrimmedMean*: {theta : |t(theta)| <= z}, tolerance 0.001.
    y, x = _split(pairs)
    result = trimmed_match(y, x, _level(z), trim_rate=trim_rate, quantile="normal")
    assert (result.ci_low, result.ci_high) == pytest.approx((expected[0], expected[1]), abs=1e-3)
    assert not result.ci_is_fallback


def test_unbounded_acceptance_falls_back_to_three_critical_value_half_widths() -> None:
    # geox_data_util_test.cc RangeFromStudentizedTrimmedMeanNoTrim: geox_data2_ accepts +-1e10 (kBoundIroas)
    # at z = 1.645; estimator.cc then reports estimate -+ 3 z se (kExtremeCiWidth, kNormalMultiplier).
    y, x = _split(GEOX2)
    result = trimmed_match(y, x, _level(1.645), trim_rate=0.0, quantile="normal")
    assert result.ci_is_fallback
    half = 3.0 * 1.645 * result.std_error
    assert (result.ci_low, result.ci_high) == pytest.approx((result.estimate - half, result.estimate + half), rel=1e-9)


def test_the_fallback_uses_the_t_critical_value_by_default() -> None:
    y, x = _split(GEOX2)  # 10 pairs, no trimming: t with 9 degrees of freedom
    result = trimmed_match(y, x, 0.90, trim_rate=0.0)
    assert result.ci_is_fallback
    half = 3.0 * float(stats.t.ppf(0.95, 9)) * result.std_error
    assert (result.ci_low, result.ci_high) == pytest.approx((result.estimate - half, result.estimate + half), rel=1e-9)


@pytest.mark.parametrize(
    ("residuals", "trim_rate", "t_stat"),
    [([6.0, 0.0, -3.0], 0.0, 0.378), ([6.0, 0.0, -3.0, 10.0, 20.0], 0.1, 1.301)],
)
def test_math_util_studentized_trimmed_mean(residuals: list[float], trim_rate: float, t_stat: float) -> None:
    # math_util_test.cc StudentizedTrimmedMean{NoTrim,Trim}: 0.378 and 1.301 (tolerance 0.001). With unit
    # spend deltas e(0) = y, so theta = 0 sits on the interval's edge exactly when z = |t(y)|.
    ones = [1.0] * len(residuals)
    inside = trimmed_match(residuals, ones, _level(t_stat + 0.001), trim_rate=trim_rate, quantile="normal")
    outside = trimmed_match(residuals, ones, _level(t_stat - 0.001), trim_rate=trim_rate, quantile="normal")
    assert inside.ci_low <= 0.0 <= inside.ci_high
    assert not outside.ci_low <= 0.0 <= outside.ci_high


# --- trimmed_match_post_analysis_test.py --------------------------------------------------------------


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_post_analysis_incremental_response(sign: float) -> None:
    # trimmed_match_post_analysis_test.py testCalculateExperimentResults (and ...NegativeIncrementalCost,
    # assignment flipped): incremental cost +-13, incremental response cost * estimate, its interval
    # cost * (-29.374179, 1.618974) with the ends swapped for a negative cost, places=3; report prints 20.4.
    result = trimmed_match([sign * v for v in Y4], [sign * v for v in X4], 0.9, max_trim_rate=0.25, quantile="normal")
    assert result.incremental_cost == pytest.approx(sign * 13.0)
    assert result.incremental_response.estimate == pytest.approx(sign * 13.0 * 11.0 / 7.0, abs=5e-4)
    ends = sorted([sign * 13.0 * -29.374179, sign * 13.0 * 1.618974])
    assert result.incremental_response.ci_low == pytest.approx(ends[0], abs=5e-3)
    assert result.incremental_response.ci_high == pytest.approx(ends[1], abs=5e-3)
    assert f"{result.incremental_response.estimate * sign:.1f}" == "20.4"


# --- the post-analysis colab on example_data_for_post_analysis.csv ------------------------------------


def _pair_deltas(last_day: str) -> tuple[list[int], FloatArray, FloatArray]:
    """Per-pair (treatment - control) response and cost summed over 2020-11-04..last_day, pairs 41, 43 out."""
    sums: dict[int, FloatArray] = {}
    with (DATA / "example_data_for_post_analysis.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            day = row["date"][:10]
            pair = int(row["pair"])
            if not "2020-11-04" <= day <= last_day or pair in (41, 43):
                continue
            sign = 1.0 if row["assignment"] == "1" else -1.0  # 1 = treatment, 2 = control
            totals = sums.setdefault(pair, np.zeros(2))
            totals += sign * np.array([float(row["response"]), float(row["cost"])])
    pairs = sorted(sums)
    deltas = np.array([sums[p] for p in pairs])
    return pairs, deltas[:, 0], deltas[:, 1]


@pytest.fixture(scope="module")
def colab_test_period() -> tuple[list[int], TrimmedMatchResult]:
    pairs, y, x = _pair_deltas("2020-12-01")
    return pairs, trimmed_match(y, x, 0.80, quantile="normal")


def test_colab_guide_iroas_summary(colab_test_period: tuple[list[int], TrimmedMatchResult]) -> None:
    # Colab guide, Cell 4 (image_post_7.png): estimate 0.212, std. error 0.093, trim_rate 0.20,
    # ci_level 0.80, confidence interval [0.089, 0.352] (3 decimals printed).
    pairs, result = colab_test_period
    assert len(pairs) == 55
    assert f"{result.estimate:.3f}" == "0.212"
    assert f"{result.std_error:.3f}" == "0.093"
    assert f"{result.trim_rate:.2f}" == "0.20"
    assert (f"{result.ci_low:.3f}", f"{result.ci_high:.3f}") == ("0.089", "0.352")


def test_colab_guide_cost_and_incremental_response(colab_test_period: tuple[list[int], TrimmedMatchResult]) -> None:
    # Colab guide: "cost = 187K", "incremental response = 39.6K" (image_post_7.png); the test-period
    # treatment cost 186574.10402358978 with zero control cost (image_post_2.png).
    _, result = colab_test_period
    assert result.incremental_cost == pytest.approx(186574.10402358978, rel=1e-12)
    assert round(result.incremental_response.estimate / 100.0) / 10.0 == 39.6


def test_colab_guide_trimmed_pairs_with_cooldown() -> None:
    # Colab guide (image_post_8.png): "The following pairs have been trimmed:[58, 62]". That is the list
    # the test + cool-down analysis (Cell 5, to 2020-12-16) trims: rate 1/55, one pair at each end.
    pairs, y, x = _pair_deltas("2020-12-16")
    result = trimmed_match(y, x, 0.80)
    assert result.trimmed_per_side == 1
    assert [pairs[i] for i in result.trimmed_pairs] == [58, 62]


# --- properties -------------------------------------------------------------------------------------


def _experiment(rng: np.random.Generator, n: int, theta: float = 2.0) -> tuple[FloatArray, FloatArray]:
    """Paired experiment: geo sizes vary, spend deltas scale with size, pair noise is size * t(3)."""
    size = rng.lognormal(0.0, 0.5, n)
    x = size * rng.uniform(0.5, 1.5, n)
    return theta * x + size * rng.standard_t(3, n), x


def test_zero_trim_is_the_ratio_of_sums() -> None:
    rng = np.random.default_rng(11)
    for _ in range(20):
        y, x = _experiment(rng, 15)
        assert trimmed_match(y, x, 0.8, trim_rate=0.0).estimate == pytest.approx(y.sum() / x.sum(), rel=1e-12)


def test_invariant_to_pair_order() -> None:
    rng = np.random.default_rng(12)
    for _ in range(10):
        y, x = _experiment(rng, 25)
        perm = rng.permutation(25)
        first, second = trimmed_match(y, x, 0.8), trimmed_match(y[perm], x[perm], 0.8)
        for name in ("estimate", "ci_low", "ci_high", "std_error", "trim_rate"):
            assert getattr(second, name) == pytest.approx(getattr(first, name), rel=1e-9)
        assert sorted(int(perm[i]) for i in second.trimmed_pairs) == list(first.trimmed_pairs)


@pytest.mark.parametrize(("scale", "shift"), [(3.5, 0.0), (-2.0, 0.0), (1.0, 4.0), (0.25, -1.5)])
def test_equivariant_to_rescaling_and_shifting_the_response(scale: float, shift: float) -> None:
    # y -> scale * y + shift * x maps theta -> scale * theta + shift, the interval likewise (its ends
    # swap for a negative scale); the trim rate and the trimmed pairs are unchanged.
    rng = np.random.default_rng(13)
    for _ in range(10):
        y, x = _experiment(rng, 20)
        base, moved = trimmed_match(y, x, 0.8), trimmed_match(scale * y + shift * x, x, 0.8)
        ends = sorted([scale * base.ci_low + shift, scale * base.ci_high + shift])
        assert moved.estimate == pytest.approx(scale * base.estimate + shift, rel=1e-9, abs=1e-9)
        assert moved.ci_low == pytest.approx(ends[0], rel=1e-9, abs=1e-9)
        assert moved.ci_high == pytest.approx(ends[1], rel=1e-9, abs=1e-9)
        assert moved.std_error == pytest.approx(abs(scale) * base.std_error, rel=1e-9)
        assert (moved.trim_rate, moved.trimmed_pairs) == (base.trim_rate, base.trimmed_pairs)


def test_interval_contains_the_estimate() -> None:
    rng = np.random.default_rng(14)
    for k in range(60):
        y, x = _experiment(rng, 6 + k % 30)
        for trim_rate in (None, 0.0, 0.2):
            result = trimmed_match(y, x, 0.9, trim_rate=trim_rate)
            assert result.ci_low <= result.estimate <= result.ci_high


def _studentized_trimmed_mean(residuals: FloatArray, m: int) -> float:
    """Trimmed mean over its winsorized standard error, computed directly (Tukey-McLaughlin)."""
    e = np.sort(residuals)
    n, h = e.size, e.size - 2 * m
    body = e[m : n - m]
    winsorized = np.concatenate((np.full(m, e[m]), body, np.full(m, e[n - 1 - m])))
    ssw = float(np.sum((winsorized - winsorized.mean()) ** 2))
    return float(body.mean() / np.sqrt(ssw / (h * (h - 1))))


def test_interval_ends_are_where_the_studentized_trimmed_mean_reaches_the_t_quantile() -> None:
    # Test inversion, checked against a direct computation of t(theta) on e(theta) = y - theta x: the ends
    # are where |t(theta)| reaches Student's t quantile with (untrimmed pairs - 1) degrees of freedom.
    rng = np.random.default_rng(15)
    for k in range(30):
        y, x = _experiment(rng, 8 + k)
        result = trimmed_match(y, x, 0.9)
        m = result.trimmed_per_side
        z = float(stats.t.ppf(0.95, y.size - 2 * m - 1))
        for end, outward in ((result.ci_low, -1.0), (result.ci_high, 1.0)):
            assert abs(_studentized_trimmed_mean(y - end * x, m)) == pytest.approx(z, rel=1e-6)
            step = 1e-6 * max(result.std_error, abs(end))
            assert abs(_studentized_trimmed_mean(y - (end + outward * step) * x, m)) > z


def test_the_public_studentized_trimmed_mean_is_the_direct_computation() -> None:
    rng = np.random.default_rng(16)
    for k in range(20):
        e = rng.standard_t(3, 5 + k)
        for m in range(0, (e.size - 2) // 2 + 1):
            assert studentized_trimmed_mean(e, m) == pytest.approx(_studentized_trimmed_mean(e, m), rel=1e-12)


def test_the_test_p_value_is_alpha_at_the_interval_ends() -> None:
    # The interval inverts the test: the p-value of e(theta) = y - theta x is alpha at its ends.
    rng = np.random.default_rng(17)
    for k in range(20):
        y, x = _experiment(rng, 8 + k)
        result = trimmed_match(y, x, 0.9)
        m = result.trimmed_per_side
        assert not result.ci_is_fallback
        for end in (result.ci_low, result.ci_high):
            assert trimmed_mean_test_p_value(y - end * x, m) == pytest.approx(0.1, rel=1e-5)
        assert trimmed_mean_test_p_value(y - result.estimate * x, m) == pytest.approx(1.0)


def test_the_normal_quantile_reproduces_the_package_and_is_narrower() -> None:
    rng = np.random.default_rng(18)
    y, x = _experiment(rng, 12)
    t_based = trimmed_match(y, x, 0.95, trim_rate=0.0)
    normal = trimmed_match(y, x, 0.95, trim_rate=0.0, quantile="normal")
    assert critical_value(0.95, 12, 0, "normal") == pytest.approx(1.959964, abs=1e-6)
    assert critical_value(0.95, 12, 0) == pytest.approx(2.200985, abs=1e-6)  # t with 11 df
    assert t_based.ci_low < normal.ci_low < normal.ci_high < t_based.ci_high


def _coverage(trim_rate: float | None, seed: int) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(2000):
        y, x = _experiment(rng, 40)
        result = trimmed_match(y, x, 0.9, trim_rate=trim_rate)
        hits += result.ci_low <= 2.0 <= result.ci_high
    return hits / 2000


def test_coverage_near_nominal_at_a_fixed_trim_rate() -> None:
    # 2,000 seeded experiments of 40 pairs with heavy-tailed (t with 3 df), size-dependent pair noise:
    # the 90% interval at a trim rate fixed in advance covers the true iROAS 88-92% of the time.
    assert 0.88 <= _coverage(0.1, seed=2024) <= 0.92


def test_coverage_with_the_data_driven_trim_rate() -> None:
    # The package's data-driven rate picks a candidate whose *estimated* se is near the smallest, which
    # is optimistic with heavy-tailed pair noise: here (40 pairs, t(3) noise) the 90% interval covers 86.2%
    # at the t quantile (84.5% at the normal), 90.5% at a fixed rate; the selection is not accounted for in
    # the interval (on the geo calibration panels it costs nothing visible). Pinned so a change is noticed.
    assert 0.82 <= _coverage(None, seed=2025) <= 0.90


# --- invalid input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "spend", "kwargs", "field"),
    [
        ([1, 2, 3, 4], [1, 2, 3], {}, "spend_delta"),  # lengths differ (estimator_test.py)
        ([1, 2], [1, 2], {}, "response_delta"),  # fewer than 3 pairs
        ([1, 2, 3], [0, 0, 0], {}, "spend_delta"),  # all-zero spend deltas
        ([1, np.nan, 3], [1, 2, 3], {}, "response_delta"),
        ([1, 2, 3], [1, np.inf, 3], {}, "spend_delta"),
        ([[1, 2, 3]], [[1, 2, 3]], {}, "response_delta"),  # not one value per pair
        ([1, 2, 3, 4], [1, 2, 3, 4], {"confidence_level": 1.0}, "confidence_level"),
        ([1, 2, 3, 4], [1, 2, 3, 4], {"confidence_level": -0.5}, "confidence_level"),  # estimator_test.py
        ([1, 2, 3, 4], [1, 2, 3, 4], {"trim_rate": 0.5}, "trim_rate"),  # estimator_test.py (0.8, 0.5)
        ([1, 2, 3, 4], [1, 2, 3, 4], {"trim_rate": -0.1}, "trim_rate"),
        ([1, 2, 3, 4], [1, 2, 3, 5], {"trim_rate": 0.3}, "trim_rate"),  # leaves no 2 pairs
        ([1, 2, 3, 4], [1, 2, 3, 4], {"max_trim_rate": -0.1}, "max_trim_rate"),  # estimator_test.py
        ([1, 2, 3, 4], [1, 2, 3, 4], {"max_trim_rate": 0.4}, "max_trim_rate"),  # above the package's 0.30
    ],
)
def test_invalid_input_names_the_field(response: object, spend: object, kwargs: dict[str, float], field: str) -> None:
    options = dict(kwargs)
    level = options.pop("confidence_level", 0.8)
    with pytest.raises(InvalidProblem) as info:
        trimmed_match(response, spend, level, **options)  # type: ignore[arg-type]
    assert info.value.field == field


def test_p_value_never_contradicts_the_interval_on_small_noisy_experiments() -> None:
    # Few pairs and heavy tails: the accepted set of the trimmed-mean test may have a gap around 0 or be
    # unbounded (the 3-standard-error fallback), where the t-test p-value is replaced by inverting the interval.
    rng = np.random.default_rng(1)
    methods: set[str] = set()
    for _ in range(400):
        n = int(rng.integers(3, 15))
        x = rng.normal(size=n) * rng.choice([0.1, 1.0, 10.0])
        y = 0.3 * x + rng.standard_t(2, size=n)
        level = float(rng.choice([0.8, 0.9, 0.95]))
        try:
            result = trimmed_match(y, x, level)
        except InvalidProblem:
            continue
        p_value, method = trimmed_match_p_value(y, x, result)
        methods.add(method)
        assert 0.0 < p_value <= 1.0
        assert (p_value <= 1.0 - level) == (result.ci_low > 0.0 or result.ci_high < 0.0)
    assert methods == {"t_test", "interval_inversion"}


def test_relative_lift_divides_each_end_by_its_own_counterfactual() -> None:
    lift = relative_lift(Interval(10.0, 4.0, 16.0), 110.0)
    assert (lift.estimate, lift.ci_low, lift.ci_high) == pytest.approx((10.0 / 100.0, 4.0 / 106.0, 16.0 / 94.0))


def test_relative_lift_is_nan_where_the_counterfactual_is_not_positive_or_a_bound_is_missing() -> None:
    lift = relative_lift(Interval(50.0, None, 120.0), 100.0)
    assert lift.estimate == pytest.approx(1.0)
    assert lift.ci_low is not None and np.isnan(lift.ci_low)
    assert lift.ci_high is not None and np.isnan(lift.ci_high)
