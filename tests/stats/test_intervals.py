"""The standard error an interval implies (:func:`stats.intervals.interval_standard_error`), against statsmodels'
Wald interval of a difference of two proportions (the holdout interval the calibration exports read it from)."""

from __future__ import annotations

import pytest
from statsmodels.stats import proportion as sm_proportion

from stats.intervals import interval_standard_error


@pytest.mark.parametrize("level", [0.8, 0.9, 0.95])
def test_the_standard_error_of_a_wald_interval_is_the_one_it_was_built_from(level: float) -> None:
    test = sm_proportion.test_proportions_2indep(4725, 90000, 480, 10000, method="wald", compare="diff")
    difference = 4725 / 90000 - 480 / 10000
    se = difference / test.statistic
    low, high = sm_proportion.confint_proportions_2indep(
        4725, 90000, 480, 10000, method="wald", compare="diff", alpha=1.0 - level
    )
    assert interval_standard_error(low, high, level) == pytest.approx(se, rel=1e-9)


@pytest.mark.parametrize("bounds", [(None, 1.0), (0.0, None), (None, None)])
def test_an_interval_missing_a_bound_implies_no_standard_error(bounds: tuple[float | None, float | None]) -> None:
    assert interval_standard_error(*bounds, 0.95) is None
