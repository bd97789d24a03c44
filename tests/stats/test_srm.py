"""Sample-ratio mismatch against ``scipy.stats.chisquare``."""

from __future__ import annotations

import pytest
from scipy import stats as sps

from stats.errors import InvalidProblem
from stats.srm import sample_ratio_mismatch


@pytest.mark.parametrize(
    ("observed", "shares"),
    [
        ([90_000, 10_000], [0.9, 0.1]),
        ([90_500, 9_500], [0.9, 0.1]),
        ([50_300, 49_700], [0.5, 0.5]),
        ([3_400, 3_300, 3_500], [1 / 3, 1 / 3, 1 / 3]),
        ([7, 3], [0.8, 0.2]),
    ],
)
def test_matches_scipy_chisquare(observed: list[int], shares: list[float]) -> None:
    total = sum(observed)
    expected = [s * total for s in shares]
    ref = sps.chisquare(observed, expected)
    result = sample_ratio_mismatch(observed, shares)
    assert result.statistic == pytest.approx(ref.statistic, rel=1e-12, abs=1e-12)
    assert result.p_value == pytest.approx(ref.pvalue, rel=1e-10, abs=1e-15)
    assert result.expected_counts == pytest.approx(expected)
    assert result.degrees_of_freedom == len(observed) - 1
    assert result.flagged == (ref.pvalue < 0.001)


def test_flags_a_broken_split() -> None:
    result = sample_ratio_mismatch([90_500, 9_500], [0.9, 0.1])  # 5% too few held out
    assert result.flagged and result.p_value < 1e-6
    assert not sample_ratio_mismatch([90_020, 9_980], [0.9, 0.1]).flagged


@pytest.mark.parametrize(
    ("observed", "shares", "field"),
    [
        ([100], [1.0], "units"),
        ([100, 10], [0.9], "expected_shares"),
        ([100, -1], [0.9, 0.1], "units[1]"),
        ([100, 10], [0.9, 0.2], "expected_shares"),
        ([100, 10], [1.0, 0.0], "expected_shares[1]"),
        ([0, 0], [0.5, 0.5], "units"),
    ],
)
def test_invalid_input_names_the_field(observed: list[int], shares: list[float], field: str) -> None:
    with pytest.raises(InvalidProblem) as excinfo:
        sample_ratio_mismatch(observed, shares, field="units")
    assert excinfo.value.field == field
