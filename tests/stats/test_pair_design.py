"""Tests for stats.geo.pair_design (trimmed_match's randomized matched-pair design).

Expected numbers come from Google's ``trimmed_match`` package (github.com/google/trimmed_match,
Apache-2.0), named at each use:

* ``trimmed_match/design/tests/trimmed_match_design_test.py``: the pairings of its small examples;
* ``design_reference.json`` (``tests/data/trimmed_match``): the package's own ``TrimmedMatchGeoXDesign``
  run on its ``example_data_for_design.csv`` (174 geos) with the design colab's settings, by
  ``tests/data/trimmed_match/reference_design/run_design_reference.py``: the cross-validated pairing
  and every simulated estimate of ``report_candidate_designs`` for three numbers of pairs kept. The
  package needs a Bazel C++ build, so there its estimator was Counterfact's ``stats.geo.trimmed_match``
  (itself tested against the package's published numbers); these tests therefore check the design
  itself: pairing, potential outcomes, which geo each simulated assignment treats, RMSE.

plus properties of the definitions and a simulation on fresh windows.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from stats.errors import InvalidProblem
from stats.geo.pair_design import (
    GeoPairing,
    balanced_assignment,
    minimum_detectable_iroas,
    pair_deltas,
    pair_geos,
    random_flips,
    rank_given_pairs,
    simulate_rmse,
)
from stats.geo.trimmed_match_batch import trimmed_match_estimates

DATA = Path(__file__).resolve().parents[1] / "data" / "trimmed_match"
FloatArray = npt.NDArray[np.float64]
RESPONSE_AND_SPEND = [1.0, 0.01]  # the package's default matching weights
RESPONSE_ONLY = [1.0, 0.0]


class DesignData:
    """``example_data_for_design.csv`` as per-geo sums: training (before 2020-12-02) and evaluation windows."""

    def __init__(self) -> None:
        sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        with (DATA / "example_data_for_design.csv").open() as handle:
            for row in csv.DictReader(handle):
                window = "eval" if "2020-12-02" <= row["date"][:10] <= "2020-12-29" else "train"
                sums[row["geo"]][f"{window}_response"] += float(row["response"])
                sums[row["geo"]][f"{window}_spend"] += float(row["cost"])
        self.names = sorted(sums, key=int)
        column = {key: np.array([sums[g][key] for g in self.names]) for key in sums[self.names[0]]}
        self.training = np.column_stack([column["train_response"], column["train_spend"]])
        self.eval_response = column["eval_response"]
        self.eval_spend = column["eval_spend"]
        self.total_response = column["train_response"] + column["eval_response"]

    def pairing(self) -> GeoPairing:
        return pair_geos(self.training, RESPONSE_AND_SPEND, self.total_response, self.names)

    def pair_sums(self, pairing: GeoPairing, values: FloatArray) -> FloatArray:
        return np.column_stack([values[pairing.first], values[pairing.second]])


@pytest.fixture(scope="module")
def design_data() -> DesignData:
    return DesignData()


@pytest.fixture(scope="module")
def reference() -> dict:  # type: ignore[type-arg]
    with (DATA / "design_reference.json").open() as handle:
        return json.load(handle)  # type: ignore[no-any-return]


def _package_flips(data: DesignData, pairing: GeoPairing, simulations: int) -> npt.NDArray[np.bool_]:
    """``MatchedPairsRMSE._simulate_geox_data``'s assignments: seed ``i``, uniform(-1, 1) > 0 treats the
    pair's geo with the larger id; as ``treat_second`` of our (first, second) order."""
    larger_second = np.array(
        [int(data.names[b]) > int(data.names[a]) for a, b in zip(pairing.first, pairing.second, strict=True)]
    )
    flips = np.array([np.random.RandomState(i).uniform(-1, 1, pairing.size) > 0 for i in range(simulations)])
    return np.where(larger_second, flips, ~flips)


def _small_panel(responses: list[tuple[str, float, float]]) -> tuple[FloatArray, list[str], FloatArray]:
    """trimmed_match_design_test.py's panels: (geo, training response, evaluation response) per geo."""
    names = [g for g, _, _ in responses]
    training = np.array([[r, 0.0] for _, r, _ in responses])
    total = np.array([r + e for _, r, e in responses])
    return training, names, total


def _pairs_of(pairing: GeoPairing, names: list[str]) -> list[tuple[str, str]]:
    return [(names[a], names[b]) for a, b in zip(pairing.first, pairing.second, strict=True)]


def test_pairing_ranks_pairs_least_similar_first_as_create_geo_pairs_cv() -> None:
    # testCreateGeoPairsCV: response on the training date 1, 2, 1, 3 -> pairs (4, 2) at 1/7, then (1, 3) at 0.
    training, names, total = _small_panel([("1", 1, 2), ("2", 2, 5), ("3", 1, 2), ("4", 3, 4)])
    pairing = pair_geos(training, RESPONSE_ONLY, total, names)
    assert _pairs_of(pairing, names) == [("4", "2"), ("1", "3")]
    np.testing.assert_allclose(pairing.distance, [1 / 7, 0.0], atol=1e-15)


def test_pairing_of_six_geos_as_check_pairs_have_correct_order() -> None:
    # testCheckPairsHaveCorrectOrder: geos 5 and 6 added with 4.45 and 4.55.
    training, names, total = _small_panel(
        [("1", 1, 2), ("2", 2, 5), ("3", 1, 2), ("4", 3, 4), ("5", 4.45, 20), ("6", 4.55, 20)]
    )
    pairing = pair_geos(training, RESPONSE_ONLY, total, names)
    assert _pairs_of(pairing, names) == [("4", "2"), ("6", "5"), ("1", "3")]
    np.testing.assert_allclose(pairing.distance, [1 / 16, 0.1 / 16, 0.0], atol=1e-12)


def test_odd_number_of_geos_leaves_out_the_largest_total_response() -> None:
    # testOddNumberOfGeos: geo 5 (responses 10 and 20) is left out; the others pair as without it.
    training, names, total = _small_panel([("1", 1, 2), ("2", 2, 5), ("3", 1, 2), ("4", 3, 4), ("5", 10, 20)])
    pairing = pair_geos(training, RESPONSE_ONLY, total, names)
    assert pairing.left_out == names.index("5")
    assert _pairs_of(pairing, names) == [("4", "2"), ("1", "3")]


def test_pairing_reproduces_the_package_on_its_174_geo_design_data(design_data: DesignData, reference: dict) -> None:  # type: ignore[type-arg]
    pairing = design_data.pairing()
    expected = reference["pairs"]
    assert [int(design_data.names[g]) for g in pairing.first] == expected["geo1"]
    assert [int(design_data.names[g]) for g in pairing.second] == expected["geo2"]
    np.testing.assert_allclose(pairing.distance, expected["distance"], rtol=1e-9)  # summation order


@pytest.mark.parametrize(
    ("test_type", "case"), [("holdback", 0), ("holdback", 1), ("holdback", 2), ("go-dark", 0), ("heavy-up", 0)]
)
def test_simulated_estimates_reproduce_report_candidate_designs(
    design_data: DesignData,
    reference: dict,  # type: ignore[type-arg]
    test_type: str,
    case: int,
) -> None:
    expected = reference["types"][test_type][case]
    kept = design_data.pairing().kept(expected["num_pairs"])
    response = design_data.pair_sums(kept, design_data.eval_response)
    spend = design_data.pair_sums(kept, design_data.eval_spend)
    simulation = simulate_rmse(
        response,
        spend,
        _package_flips(design_data, kept, 10),
        test_type,  # type: ignore[arg-type]
        reference["budget"],
    )
    assert response.sum() == pytest.approx(expected["experiment_response"], rel=1e-12)
    assert spend.sum() == pytest.approx(expected["experiment_spend"], rel=1e-12)
    # The package's estimator perturbs tied kinks by ~1e-10 (estimator.py), hence the tolerance.
    np.testing.assert_allclose(simulation.estimates, expected["estimates"], rtol=1e-8, atol=1e-10)
    assert simulation.rmse == pytest.approx(expected["rmse"], rel=1e-8)


def test_minimum_detectable_iroas_is_calculate_min_detectable_iroas(reference: dict) -> None:  # type: ignore[type-arg]
    for row in reference["types"]["holdback"]:
        mdi = minimum_detectable_iroas(row["rmse"], alpha=0.1, power=0.8)
        assert mdi == pytest.approx(row["min_detectable_iroas_10_80"], rel=1e-12)


def _toy_pairs(seed: int, pairs: int = 30) -> tuple[FloatArray, FloatArray]:
    rng = np.random.default_rng(seed)
    size = rng.lognormal(10.0, 1.0, pairs)[:, None]
    response = size * (1.0 + 0.05 * rng.standard_normal((pairs, 2)))
    spend = 0.01 * size * (1.0 + 0.2 * rng.standard_normal((pairs, 2))).clip(0.1)
    return response, spend


def test_holdback_rmse_at_a_positive_iroas_equals_the_rmse_at_zero() -> None:
    response, spend = _toy_pairs(1)
    flips = random_flips(np.random.default_rng(2), 200, 30)
    at_zero = simulate_rmse(response, spend, flips, "holdback", 1e5)
    at_three = simulate_rmse(response, spend, flips, "holdback", 1e5, iroas=3.0)
    np.testing.assert_allclose(at_three.estimates - 3.0, at_zero.estimates, atol=1e-9)
    assert at_three.rmse == pytest.approx(at_zero.rmse, rel=1e-9)


def test_holdback_and_go_dark_rmse_is_inversely_proportional_to_the_budget() -> None:
    response, spend = _toy_pairs(3)
    flips = random_flips(np.random.default_rng(4), 100, 30)
    for test_type in ("holdback", "go-dark"):
        small = simulate_rmse(response, spend, flips, test_type, 1e4)
        large = simulate_rmse(response, spend, flips, test_type, 5e4)
        assert large.rmse == pytest.approx(small.rmse / 5.0, rel=1e-9)


def test_spend_deltas_follow_the_test_type() -> None:
    response = np.array([[10.0, 12.0], [20.0, 18.0]])
    spend = np.array([[1.0, 3.0], [2.0, 4.0]])  # total 10: budget 5 gives r = 1
    treat_second = np.array([[True, False]])
    expected = {
        "holdback": ([3.0, 2.0], [12.0 + 2 * 3.0 - 10.0, 20.0 + 2 * 2.0 - 18.0]),
        "go-dark": ([-1.0, -4.0], [12.0 - 2 * 3.0 - 10.0, 20.0 - 2 * 2.0 - 18.0]),
        "heavy-up": ([2 * 3.0 - 1.0, 2 * 2.0 - 4.0], [12.0 + 2 * 3.0 - 10.0, 20.0 + 2 * 2.0 - 18.0]),
    }
    for test_type, (spend_delta, response_delta) in expected.items():
        y, x = pair_deltas(response, spend, treat_second, test_type, 5.0, iroas=2.0)  # type: ignore[arg-type]
        np.testing.assert_allclose(x[0], spend_delta)
        np.testing.assert_allclose(y[0], response_delta)


def _market_window(rng: np.random.Generator, size: FloatArray, days: int) -> tuple[FloatArray, FloatArray]:
    """Per-geo response and spend sums over ``days`` fresh days of the fresh-window test's market model."""
    day = 1.0 + 0.05 * rng.standard_normal(days)
    response = size[:, None] * (day[None, :] + 0.10 * rng.standard_normal((size.size, days)))
    spend = 0.01 * size[:, None] * (1.0 + 0.2 * rng.standard_normal((size.size, days)))
    return response.sum(axis=1), spend.sum(axis=1)


def _kept_sums(pairing: GeoPairing, values: FloatArray) -> FloatArray:
    return np.column_stack([values[pairing.first], values[pairing.second]])


def test_reported_rmse_matches_the_empirical_rmse_on_fresh_windows() -> None:
    """Design on one history, then run the test on fresh windows of the same market model.

    60 geos of lognormal sizes, daily response size x (1 + 5% common day effect + 10% geo noise),
    spend 1% of size with 20% noise; 100 training days and a 28-day evaluation window. The design's
    reported MSE (200 assignments of the evaluation window) is averaged over 40 independent
    histories; each history's kept pairs then meet 50 fresh 28-day windows with a true iROAS of 2,
    one random assignment each, and the trimmed match errors give the empirical MSE.
    """
    rng = np.random.default_rng(7)
    geos, train_days, test_days, budget, iroas = 60, 100, 28, 2e5, 2.0
    names = [f"g{i:02d}" for i in range(geos)]
    reported, empirical = [], []
    for _ in range(40):
        size = rng.lognormal(9.0, 0.8, geos)
        train_response, train_spend = _market_window(rng, size, train_days)
        eval_response, eval_spend = _market_window(rng, size, test_days)
        pairing = pair_geos(
            np.column_stack([train_response, train_spend]), RESPONSE_AND_SPEND, train_response + eval_response, names
        )
        flips = random_flips(rng, 200, pairing.size)
        design = simulate_rmse(
            _kept_sums(pairing, eval_response), _kept_sums(pairing, eval_spend), flips, "holdback", budget
        )
        reported.append(design.rmse**2)
        for _ in range(50):
            fresh_response, fresh_spend = _market_window(rng, size, test_days)
            one = random_flips(rng, 1, pairing.size)
            response, spend = _kept_sums(pairing, fresh_response), _kept_sums(pairing, fresh_spend)
            y, x = pair_deltas(response, spend, one, "holdback", budget, iroas)
            estimate, _ = trimmed_match_estimates(y, x, 0.10)
            empirical.append((estimate[0] - iroas) ** 2)
    ratio = math.sqrt(np.mean(empirical) / np.mean(reported))
    assert 0.88 < ratio < 1.12, ratio


def test_balanced_assignment_is_the_same_for_the_same_seed_and_passes_its_checks(design_data: DesignData) -> None:
    kept = design_data.pairing().kept(40)
    response = design_data.pair_sums(kept, design_data.eval_response)
    spend = design_data.pair_sums(kept, design_data.eval_spend)
    first = balanced_assignment(11, response, response, spend, confidence=0.9)
    again = balanced_assignment(11, response, response, spend, confidence=0.9)
    other = balanced_assignment(12, response, response, spend, confidence=0.9)
    np.testing.assert_array_equal(first.treat_second, again.treat_second)
    assert not np.array_equal(first.treat_second, other.treat_second)
    assert first.balanced
    assert first.aa_interval is not None and first.aa_interval[0] < 0.0 < first.aa_interval[1]
    assert 40 - 26 <= first.sign_test_positives <= 26  # Binomial(40, 1/2)'s 95% quantile is 26


def test_an_assignment_no_draw_balances_is_the_first_draw_marked_unbalanced() -> None:
    # No spend in the evaluation window: the A/A test has no iROAS to estimate, so no draw passes it.
    response = np.column_stack([np.full(20, 100.0), 100.0 + np.arange(20.0)])
    outcome = balanced_assignment(5, response, response, np.zeros((20, 2)), confidence=0.9)
    first = random_flips(np.random.default_rng(5), 1, 20)[0]
    assert not outcome.balanced
    assert outcome.draws == 200
    assert outcome.aa_interval is None
    np.testing.assert_array_equal(outcome.treat_second, first)


def test_given_pairs_are_ranked_by_the_same_distance() -> None:
    training, names, _ = _small_panel([("1", 1, 2), ("2", 2, 5), ("3", 1, 2), ("4", 3, 4)])
    pairing = rank_given_pairs(training, RESPONSE_ONLY, [(0, 2), (3, 1)], names)
    assert _pairs_of(pairing, names) == [("4", "2"), ("1", "3")]
    np.testing.assert_allclose(pairing.distance, [1 / 7, 0.0], atol=1e-15)


def test_a_pair_of_a_geo_with_itself_is_refused_naming_the_pair() -> None:
    training, names, _ = _small_panel([("1", 1, 2), ("2", 2, 5), ("3", 1, 2), ("4", 3, 4)])
    with pytest.raises(InvalidProblem) as raised:
        rank_given_pairs(training, RESPONSE_ONLY, [(0, 2), (1, 1)], names)
    assert raised.value.field == "pairs[1]"


def test_a_geo_in_two_pairs_is_refused_naming_the_second_pair() -> None:
    training, names, _ = _small_panel([("1", 1, 2), ("2", 2, 5), ("3", 1, 2), ("4", 3, 4)])
    with pytest.raises(InvalidProblem) as raised:
        rank_given_pairs(training, RESPONSE_ONLY, [(0, 2), (3, 2)], names)
    assert raised.value.field == "pairs[1]"
    assert "'3'" in raised.value.reason


def test_keeping_fewer_pairs_drops_the_least_similar(design_data: DesignData) -> None:
    pairing = design_data.pairing()
    kept = pairing.kept(10)
    np.testing.assert_array_equal(kept.first, pairing.first[-10:])
    assert kept.distance.max() <= pairing.distance[: pairing.size - 10].min()
