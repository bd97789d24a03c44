"""Serial correlation of a fit's residuals: the lag-1 autocorrelation every geo result reports.

``r1 = sum_t e_t e_{t-1} / sum_t e_t^2`` on the demeaned residuals ``e`` (Box & Jenkins' sample
autocorrelation; its null standard error is about ``1 / sqrt(n)``).  The block-permutation tests of the
geo methods stay valid under weak dependence, but were calibrated for ``|r1|`` up to about
:data:`STRONG_AUTOCORRELATION` (``tests/stats/test_geo_calibration.py``); beyond it a result is flagged.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from stats.geo.tbr import STRONG_AUTOCORRELATION

__all__ = ["STRONG_AUTOCORRELATION", "is_strong", "lag1_autocorrelation"]


def lag1_autocorrelation(residuals: npt.ArrayLike) -> float:
    """Lag-1 autocorrelation of the demeaned series (NaN for fewer than 3 values or a constant series).

    >>> round(lag1_autocorrelation([1.0, 2.0, 3.0, 4.0]), 3)
    0.25
    """
    e = np.asarray(residuals, dtype=np.float64)
    if e.size < 3 or not np.isfinite(e).all():
        return float("nan")
    e = e - e.mean()
    total = float(np.dot(e, e))
    if total <= 0.0:
        return float("nan")
    return float(np.dot(e[1:], e[:-1]) / total)


def is_strong(r1: float) -> bool:
    """``|r1|`` beyond the dependence the geo methods were calibrated on."""
    return bool(np.isfinite(r1) and abs(r1) > STRONG_AUTOCORRELATION)
