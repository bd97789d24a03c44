"""Holm's step-down adjustment of p-values across channels (Holm 1979).

"A Simple Sequentially Rejective Multiple Test Procedure", Scand. J. Statist. 6, 65–70. With the m
p-values sorted ascending p_(1) ≤ … ≤ p_(m), the adjusted p-values are

    p̃_(i) = min(1, max_{j ≤ i} (m − j + 1)·p_(j))

(the running maximum makes them monotone in the raw order), returned in the input order. Rejecting
p̃ < α controls the family-wise error rate at α under any dependence between the tests. The same
formula is statsmodels' ``multipletests(method='holm')``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from stats.errors import InvalidProblem


def _validate(p_values: Sequence[float | None], field: str) -> None:
    for index, p in enumerate(p_values):
        if p is None:
            continue
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) or not 0.0 <= p <= 1.0:
            raise InvalidProblem(f"{field}[{index}]", "must be a number between 0 and 1")


def holm_adjust(p_values: Sequence[float], *, field: str = "p_values") -> list[float]:
    """Holm-adjusted p-values in the input order (monotone in the raw p-values, capped at 1)."""
    _validate(p_values, field)
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[index])))
        adjusted[index] = running
    return adjusted


def holm_adjust_with_missing(p_values: Sequence[float | None], *, field: str = "p_values") -> list[float | None]:
    """:func:`holm_adjust` where a None (a test that could not be run) stays None and is left out of m."""
    _validate(p_values, field)
    present = [i for i, p in enumerate(p_values) if p is not None]
    adjusted = holm_adjust([float(p) for p in p_values if p is not None], field=field)
    result: list[float | None] = [None] * len(p_values)
    for index, value in zip(present, adjusted, strict=True):
        result[index] = value
    return result
