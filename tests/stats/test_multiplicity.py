"""Holm's step-down adjustment against statsmodels' ``multipletests(method='holm')``."""

from __future__ import annotations

import gc
import itertools

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from stats.errors import InvalidProblem
from stats.multiplicity import holm_adjust, holm_adjust_with_missing


@pytest.fixture
def fast_multipletests(monkeypatch: pytest.MonkeyPatch) -> None:
    """statsmodels' multipletests runs gc.collect() on every call (~1 s in a big test process)."""
    monkeypatch.setattr(gc, "collect", lambda *args: 0)


@pytest.mark.usefixtures("fast_multipletests")
@pytest.mark.parametrize(
    "p_values",
    [
        [0.01, 0.04, 0.03, 0.005],
        [0.2, 0.2, 0.2],  # ties
        [0.0, 1.0, 0.5, 0.0001],
        [0.049],
        [0.3, 0.01, 0.02, 0.8, 0.011, 0.04, 0.9],
    ],
)
def test_holm_matches_statsmodels(p_values: list[float]) -> None:
    _, expected, _, _ = multipletests(p_values, method="holm")
    assert holm_adjust(p_values) == pytest.approx(list(expected), abs=1e-15)


@pytest.mark.usefixtures("fast_multipletests")
def test_holm_matches_statsmodels_on_random_families() -> None:
    rng = np.random.default_rng(1979)
    for _ in range(300):
        m = int(rng.integers(1, 31))
        p_values = [float(p) for p in np.round(rng.beta(0.5, 2.0, size=m), int(rng.integers(2, 6)))]  # with ties
        _, expected, _, _ = multipletests(p_values, method="holm")
        adjusted = holm_adjust(p_values)
        assert adjusted == pytest.approx(list(expected), abs=1e-12)
        # Monotone in the raw p-values, never below them, capped at 1.
        order = np.argsort(p_values, kind="stable")
        sorted_adjusted = [adjusted[i] for i in order]
        assert all(a <= b for a, b in itertools.pairwise(sorted_adjusted))
        assert all(raw <= adj <= 1.0 for raw, adj in zip(p_values, adjusted, strict=True))


def test_holm_hand_example() -> None:
    # Sorted 0.01, 0.02, 0.03, 0.04 (m = 4): 0.04, 0.06, 0.06 (running max of 0.06), 0.06 (max of 0.04).
    assert holm_adjust([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])


def test_empty_family() -> None:
    assert holm_adjust([]) == []


def test_missing_p_values_stay_missing_and_leave_the_family() -> None:
    assert holm_adjust_with_missing([0.01, None, 0.04]) == pytest.approx([0.02, None, 0.04])
    assert holm_adjust_with_missing([None]) == [None]


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), float("inf")])
def test_invalid_p_value_names_its_position(bad: float) -> None:
    with pytest.raises(InvalidProblem) as excinfo:
        holm_adjust([0.1, bad], field="channels.p_value")
    assert excinfo.value.field == "channels.p_value[1]"
