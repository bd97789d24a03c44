"""In-space placebo test for synthetic controls.

Abadie, Diamond & Hainmueller (2010), "Synthetic Control Methods for Comparative Case Studies",
JASA 105(490), Section 2.4 and Figure 8: every donor in turn is treated as if it had received the
treatment (its synthetic control drawn from the other donors, the real treated units left out) and
the post/pre ratio of root mean squared prediction errors

    R = sqrt(mean_{t post} (y_t - y^_t)^2) / sqrt(mean_{t pre} (y_t - y^_t)^2)

is compared with the treated unit's.  The p-value is the treated unit's rank among all ``J + 1``
ratios, ``p = (1 + #{j : R_j >= R_treated}) / (1 + J)``.  The placebo fits use the same estimator
as the main fit (SCM, or ridge-augmented SCM with the main fit's penalty held fixed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from stats.errors import InvalidProblem
from stats.geo.augmented_synthetic_control import pre_period_fit_residuals

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

__all__ = ["PlaceboTest", "in_space_placebo", "rmspe_ratio"]


@dataclass(frozen=True)
class PlaceboTest:
    """Treated unit's RMSPE ratio, the donors' placebo ratios and the rank p-value."""

    p_value: float
    ratio: float
    placebo_ratios: FloatArray


def rmspe_ratio(
    treated: FloatArray,
    donors: FloatArray,
    post: BoolArray,
    *,
    fixed_effects: bool = True,
    ridge_lambda: float | None = None,
) -> float:
    """Post/pre RMSPE ratio of a synthetic control fitted on the pre-period (``inf`` for a perfect pre-fit)."""
    resid = pre_period_fit_residuals(treated, donors, post, fixed_effects=fixed_effects, ridge_lambda=ridge_lambda)
    pre_rmspe = float(np.sqrt(np.mean(resid[~post] ** 2)))
    post_rmspe = float(np.sqrt(np.mean(resid[post] ** 2)))
    if pre_rmspe == 0.0:
        return float("inf") if post_rmspe > 0.0 else 1.0
    return post_rmspe / pre_rmspe


def in_space_placebo(
    treated: FloatArray,
    donors: FloatArray,
    post: BoolArray,
    *,
    fixed_effects: bool = True,
    ridge_lambda: float | None = None,
) -> PlaceboTest:
    """Rank of the treated unit's RMSPE ratio among the donors' placebo ratios.

    ``treated`` ``(T,)`` (treated units averaged), ``donors`` ``(T, J)`` with ``J >= 2``, ``post``
    a boolean mask ``(T,)``.
    """
    a = np.asarray(treated, dtype=np.float64)
    b = np.asarray(donors, dtype=np.float64)
    mask = np.asarray(post, dtype=bool)
    j = b.shape[1]
    if j < 2:
        raise InvalidProblem("treatment_markets", "the placebo test needs at least 2 control markets")
    if not mask.any() or mask.all():
        raise InvalidProblem("test_period", "needs both pre-period and test-period observations")
    ratio = rmspe_ratio(a, b, mask, fixed_effects=fixed_effects, ridge_lambda=ridge_lambda)
    placebo = np.empty(j)
    for k in range(j):
        others = np.delete(b, k, axis=1)
        placebo[k] = rmspe_ratio(b[:, k], others, mask, fixed_effects=fixed_effects, ridge_lambda=ridge_lambda)
    count = int(np.sum(placebo >= ratio * (1.0 - 1e-12)))
    return PlaceboTest(p_value=(1.0 + count) / (1.0 + j), ratio=ratio, placebo_ratios=placebo)
