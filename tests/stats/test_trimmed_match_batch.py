"""Tests for stats.geo.trimmed_match_batch: many trimmed match estimates at once, each as trimmed_match gives it.

The reference is :func:`stats.geo.trimmed_match.trimmed_match` row by row (itself checked against Google's
trimmed_match package), on seeded random pair deltas of every shape the design simulates.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from stats.errors import InvalidProblem
from stats.geo.trimmed_match import trimmed_match
from stats.geo.trimmed_match_batch import trimmed_match_estimates

FloatArray = npt.NDArray[np.float64]


def _assert_row_by_row(response: FloatArray, spend: FloatArray, max_trim_rate: float) -> None:
    estimates, rates = trimmed_match_estimates(response, spend, max_trim_rate)
    for row in range(response.shape[0]):
        fit = trimmed_match(response[row], spend[row], 0.8, max_trim_rate=max_trim_rate)
        assert estimates[row] == pytest.approx(fit.estimate, rel=1e-10, abs=1e-12), row
        assert rates[row] == fit.trim_rate, row


@pytest.mark.parametrize("pairs", [3, 7, 20, 45])
def test_spend_deltas_of_one_sign_give_trimmed_match_estimates(pairs: int) -> None:
    rng = np.random.default_rng(pairs)
    response = rng.standard_t(3, size=(40, pairs)) * 10.0
    spend = rng.uniform(0.2, 5.0, size=(40, pairs))
    spend[20:] *= -1.0  # go-dark: all negative
    _assert_row_by_row(response, spend, 0.10)


@pytest.mark.parametrize("pairs", [3, 7, 20, 45])
def test_spend_deltas_of_both_signs_give_trimmed_match_estimates(pairs: int) -> None:
    rng = np.random.default_rng(100 + pairs)
    response = rng.standard_t(3, size=(40, pairs)) * 10.0
    spend = rng.uniform(0.2, 5.0, size=(40, pairs)) * np.where(rng.random((40, pairs)) < 0.3, -1.0, 1.0)
    spend[:, 0] = -abs(spend[:, 0])
    spend[:, 1] = abs(spend[:, 1])
    _assert_row_by_row(response, spend, 0.25)


def test_a_trimmed_mean_with_several_roots_takes_the_one_trimmed_match_takes() -> None:
    # Heavy-tailed responses against mixed spends: many rows' trimmed means cross zero more than once.
    rng = np.random.default_rng(7)
    response = rng.standard_cauchy(size=(200, 12)) * 5.0
    spend = rng.normal(size=(200, 12))
    _assert_row_by_row(response, spend, 0.25)


def test_coincident_kinks_are_estimated_as_trimmed_match_does() -> None:
    # Integer deltas: several residual lines cross at one point, which the sweep hands to trimmed_match.
    response = np.array([[1.0, 10.0, 3.0, 8.0, 5.0, -2.0, 4.0], [2.0, 4.0, 6.0, 8.0, 10.0, 12.0, -1.0]])
    spend = np.array([[1.0, 5.0, -2.0, 5.0, 3.0, -1.0, 2.0], [1.0, 2.0, 3.0, -4.0, 5.0, 6.0, -1.0]])
    _assert_row_by_row(response, spend, 0.25)


def test_fewer_than_three_pairs_are_refused() -> None:
    with pytest.raises(InvalidProblem) as raised:
        trimmed_match_estimates([[1.0, 2.0]], [[1.0, 1.0]], 0.1)
    assert raised.value.field == "response_delta"
