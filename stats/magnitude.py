"""The working range of the estimators that square and sum their inputs (TBR, trimmed match, synthetic control).

Their formulas take sums of squares and cross-products of whole series; past about 1e154 a single
square is beyond the range of a double, and a regression, a trimmed mean or a quadratic programme has
no meaningful answer there. No metric a geo test measures (revenue, conversions, spend per geo and
period) comes near 1e100, so values beyond it are refused up front as a domain error naming the input,
which leaves squares (≤ 1e200) summed over any realistic number of periods or pairs finite.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from stats.errors import InvalidProblem

#: Largest magnitude accepted in a series; its square summed over 1e100 terms is still finite.
MAX_MAGNITUDE: Final = 1e100


def check_magnitude(values: npt.ArrayLike, field: str) -> None:
    """Raise :class:`InvalidProblem` on ``field`` when some value exceeds :data:`MAX_MAGNITUDE` in
    magnitude (NaN and missing values are left to the caller's own checks)."""
    array = np.asarray(values, dtype=np.float64)
    if array.size and bool((np.abs(array) > MAX_MAGNITUDE).any()):
        raise InvalidProblem(
            field, f"has values beyond ±{MAX_MAGNITUDE:g}; their squares would exceed the range of a double"
        )
