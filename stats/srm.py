"""Sample-ratio mismatch: Pearson's chi-square goodness-of-fit of arm sizes to the planned split.

With observed counts O_k over K arms and planned shares π_k (Σπ_k = 1), E_k = π_k·ΣO and

    χ² = Σ (O_k − E_k)² / E_k,    p = P(χ²_{K−1} ≥ χ²)        (Pearson 1900)

A mismatch is flagged at p < 0.001, the conservative threshold used for SRM checks because they run on
every test (Fabijan et al. 2019, "Diagnosing Sample Ratio Mismatch in Online Controlled Experiments",
KDD; Kohavi, Tang & Xu 2020, ch. 21). This is ``scipy.stats.chisquare(O, E)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Real

from scipy import special

from stats.errors import InvalidProblem

SRM_THRESHOLD = 0.001
SHARE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class SrmResult:
    """Chi-square statistic, its p-value, the expected counts and whether the mismatch is flagged."""

    statistic: float
    p_value: float
    degrees_of_freedom: int
    expected_counts: tuple[float, ...]
    flagged: bool


def sample_ratio_mismatch(
    observed: Sequence[int],
    expected_shares: Sequence[float],
    *,
    threshold: float = SRM_THRESHOLD,
    field: str = "observed",
    shares_field: str = "expected_shares",
) -> SrmResult:
    """Test observed arm sizes against planned shares (which must be > 0 and sum to 1)."""
    if len(observed) < 2:
        raise InvalidProblem(field, "needs at least two arms")
    if len(expected_shares) != len(observed):
        raise InvalidProblem(shares_field, "must have one share per arm")
    counts: list[int] = []
    for index, count in enumerate(observed):
        if isinstance(count, bool) or not isinstance(count, Integral) or count < 0:
            raise InvalidProblem(f"{field}[{index}]", "must be a whole number ≥ 0")
        counts.append(int(count))
    shares: list[float] = []
    for index, share in enumerate(expected_shares):
        if isinstance(share, bool) or not isinstance(share, Real) or not math.isfinite(float(share)):
            raise InvalidProblem(f"{shares_field}[{index}]", "must be a finite number")
        if not float(share) > 0.0:
            raise InvalidProblem(f"{shares_field}[{index}]", "must be greater than 0")
        shares.append(float(share))
    if abs(sum(shares) - 1.0) > SHARE_TOLERANCE:
        raise InvalidProblem(shares_field, "must add up to 1")
    if not 0.0 < threshold < 1.0:
        raise InvalidProblem("threshold", "must be strictly between 0 and 1")
    total = sum(counts)
    if total == 0:
        raise InvalidProblem(field, "has no units in any arm")
    expected = tuple(share / sum(shares) * total for share in shares)
    statistic = sum((o - e) ** 2 / e for o, e in zip(counts, expected, strict=True))
    dof = len(counts) - 1
    p_value = float(special.chdtrc(dof, statistic))
    return SrmResult(
        statistic=float(statistic),
        p_value=p_value,
        degrees_of_freedom=dof,
        expected_counts=expected,
        flagged=p_value < threshold,
    )
