"""One arm of a holdout test, described by its sufficient statistics.

A holdout arm is summarised without unit-level data:

* conversion (proportion) metric: ``units`` n and ``conversions`` c, so Σy = Σy² = c;
* mean metric (revenue per unit, ...): ``units`` n, ``sum`` Σy and ``sum_squares`` Σy²;
* optionally, for CUPED (Deng, Xu, Kohavi & Walker 2013), a pre-period covariate x per unit:
  ``covariate_sum`` Σx, ``covariate_sum_squares`` Σx² and ``cross_sum`` Σx·y.

From those the usual moments follow (sample moments divide by n − 1):

    mean        ȳ = Σy / n
    variance    s² = (Σy² − (Σy)²/n) / (n − 1)
    covariance  s_xy = (Σx·y − Σx·Σy/n) / (n − 1)

The standard error of the arm mean is ``sqrt(s² / n)`` for a mean metric and the Wald
``sqrt(p(1 − p) / n)`` for a proportion (the convention of the two-proportion z test, e.g. Agresti,
*Categorical Data Analysis*, 3rd ed., §1.4; note p(1 − p) = s²·(n − 1)/n for 0/1 data).

The sums may be taken about constants, ``shift`` c for y and ``covariate_shift`` d for x
(Σ(y − c), Σ(y − c)², Σ(x − d), Σ(x − d)², Σ(x − d)(y − c)): every moment above is unchanged except the
means, which become c + Σ(y − c)/n and d + Σ(x − d)/n. Summing about a value near the data keeps
Σy² − (Σy)²/n free of catastrophic cancellation when the mean is large against the spread (Chan,
Golub & LeVeque 1983, "Algorithms for computing the sample variance"); an aggregation that sees the
unit data (unit-level outcomes in SQL) uses it.

The array helpers at the bottom (``*_arrays``) hold the same formulas over numpy arrays so
simulations can run them over many experiments at once; the dataclass calls them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Literal

import numpy as np
import numpy.typing as npt

from stats.errors import InvalidProblem

MetricKind = Literal["proportion", "mean"]
FloatArray = npt.NDArray[np.float64]

# Sums of squares supplied by a caller are rounded; a centred sum of squares that is negative by no
# more than this fraction of the raw sum of squares is rounding and is read as 0.
ROUNDING_TOLERANCE = 1e-8


def _as_count(value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InvalidProblem(path, "must be a number")
    if isinstance(value, Integral):
        count = int(value)
    else:
        as_float = float(value)
        if not math.isfinite(as_float) or not as_float.is_integer():
            raise InvalidProblem(path, "must be a whole number")
        count = int(as_float)
    if count < 0:
        raise InvalidProblem(path, "must not be negative")
    return count


def _as_finite(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InvalidProblem(path, "must be a number")
    as_float = float(value)
    if not math.isfinite(as_float):
        raise InvalidProblem(path, "must be a finite number")
    return as_float


def centred_sum_of_squares(units: int, total: float, sum_squares: float, path: str) -> float:
    """Σ(y − ȳ)² = Σy² − (Σy)²/n, refusing values that are negative beyond rounding.

    When (Σy)² is beyond the range of a double (|Σy| > ~1.3e154) the same difference is taken in units
    of a = |Σy|/√n, a²·(Σy²/a² − 1): without it (Σy)²/n is inf, the check below compared inf with inf,
    and an impossible arm (Σy² < (Σy)²/n) went through with a NaN variance.
    """
    square = total * total
    if not math.isfinite(square):
        a = abs(total) / math.sqrt(units)
        scaled = sum_squares / a / a - 1.0  # Σy²/a² and (Σy)²/(n a²) = 1
        if scaled < 0.0:
            if -scaled > ROUNDING_TOLERANCE:
                raise InvalidProblem(
                    path,
                    "is smaller than sum² / units, which would make the variance negative; "
                    "check that it is the sum of squared values",
                )
            return 0.0
        return scaled * a * a  # at most Σy², so finite
    centred = sum_squares - square / units
    if centred < 0.0:
        scale = max(abs(sum_squares), square / units)
        if -centred > ROUNDING_TOLERANCE * scale:
            raise InvalidProblem(
                path,
                "is smaller than sum² / units, which would make the variance negative; "
                "check that it is the sum of squared values",
            )
        centred = 0.0
    return centred


@dataclass(frozen=True)
class ArmSummary:
    """Sufficient statistics of one arm (treatment or holdout) of one channel.

    Build it with :meth:`from_proportion` or :meth:`from_mean`; both validate and raise
    :class:`~stats.errors.InvalidProblem` naming the offending input as ``f"{field_path}.<name>"``.
    ``total`` is Σy (the conversions for a proportion metric) and ``sum_squares`` Σy².
    """

    kind: MetricKind
    units: int
    total: float
    sum_squares: float
    covariate_sum: float | None = None
    covariate_sum_squares: float | None = None
    cross_sum: float | None = None
    shift: float = 0.0
    covariate_shift: float = 0.0
    field_path: str = field(default="arm", compare=False, repr=False)

    def __post_init__(self) -> None:
        p = self.field_path
        outcome = "conversions" if self.kind == "proportion" else "sum"
        if self.kind not in ("proportion", "mean"):
            raise InvalidProblem(f"{p}.kind", "must be 'proportion' or 'mean'")
        units = _as_count(self.units, f"{p}.units")
        if units == 0:
            raise InvalidProblem(f"{p}.units", "is 0: an arm with no units has no mean")
        if units < 2:
            raise InvalidProblem(f"{p}.units", "must be at least 2 to estimate a variance")
        object.__setattr__(self, "units", units)
        for name in ("shift", "covariate_shift"):
            object.__setattr__(self, name, _as_finite(getattr(self, name), f"{p}.{name}"))
        if self.kind == "proportion" and self.shift != 0.0:
            raise InvalidProblem(f"{p}.shift", "must be 0 for a proportion metric: conversions are counted")
        if self.kind == "proportion":
            conversions = _as_count(self.total, f"{p}.conversions")
            if conversions > units:
                raise InvalidProblem(f"{p}.conversions", "is larger than units: a unit converts at most once")
            object.__setattr__(self, "total", float(conversions))
            object.__setattr__(self, "sum_squares", float(conversions))
        else:
            total = _as_finite(self.total, f"{p}.{outcome}")
            sum_squares = _as_finite(self.sum_squares, f"{p}.sum_squares")
            if sum_squares < 0.0:
                raise InvalidProblem(f"{p}.sum_squares", "must not be negative: it is a sum of squares")
            centred_sum_of_squares(units, total, sum_squares, f"{p}.sum_squares")
            object.__setattr__(self, "total", total)
            object.__setattr__(self, "sum_squares", sum_squares)
        self._validate_covariate()

    def _validate_covariate(self) -> None:
        p = self.field_path
        parts = {
            "covariate_sum": self.covariate_sum,
            "covariate_sum_squares": self.covariate_sum_squares,
            "cross_sum": self.cross_sum,
        }
        given = [name for name, value in parts.items() if value is not None]
        if not given:
            return
        if len(given) != len(parts):
            missing = next(name for name, value in parts.items() if value is None)
            raise InvalidProblem(
                f"{p}.{missing}", "is missing: covariate_sum, covariate_sum_squares and cross_sum go together"
            )
        for name, value in parts.items():
            object.__setattr__(self, name, _as_finite(value, f"{p}.{name}"))
        assert self.covariate_sum is not None and self.covariate_sum_squares is not None
        assert self.cross_sum is not None
        if self.covariate_sum_squares < 0.0:
            raise InvalidProblem(f"{p}.covariate_sum_squares", "must not be negative: it is a sum of squares")
        n = self.units
        sxx = centred_sum_of_squares(n, self.covariate_sum, self.covariate_sum_squares, f"{p}.covariate_sum_squares")
        syy = centred_sum_of_squares(n, self.total, self.sum_squares, f"{p}.sum_squares")
        sxy = self.cross_sum - self.covariate_sum * self.total / n
        # Cauchy–Schwarz: (Σ(x − x̄)(y − ȳ))² ≤ Σ(x − x̄)² · Σ(y − ȳ)².
        bound = math.sqrt(sxx * syy)
        slack = ROUNDING_TOLERANCE * (abs(self.cross_sum) + abs(self.covariate_sum * self.total / n) + bound)
        if abs(sxy) > bound + slack:
            raise InvalidProblem(
                f"{p}.cross_sum",
                "is inconsistent with the sums and sums of squares (the implied correlation exceeds 1)",
            )

    @classmethod
    def from_proportion(
        cls,
        units: int,
        conversions: int,
        *,
        covariate_sum: float | None = None,
        covariate_sum_squares: float | None = None,
        cross_sum: float | None = None,
        covariate_shift: float = 0.0,
        field_path: str = "arm",
    ) -> ArmSummary:
        """An arm of a conversion metric: ``conversions`` of ``units`` converted (covariate sums optionally
        about ``covariate_shift``)."""
        return cls(
            kind="proportion",
            units=units,
            total=conversions,
            sum_squares=conversions,
            covariate_sum=covariate_sum,
            covariate_sum_squares=covariate_sum_squares,
            cross_sum=cross_sum,
            covariate_shift=covariate_shift,
            field_path=field_path,
        )

    @classmethod
    def from_mean(
        cls,
        units: int,
        sum: float,
        sum_squares: float,
        *,
        covariate_sum: float | None = None,
        covariate_sum_squares: float | None = None,
        cross_sum: float | None = None,
        shift: float = 0.0,
        covariate_shift: float = 0.0,
        field_path: str = "arm",
    ) -> ArmSummary:
        """An arm of a continuous metric given Σy (``sum``) and Σy² (``sum_squares``), or the same sums
        about ``shift`` (and the covariate sums about ``covariate_shift``)."""
        return cls(
            kind="mean",
            units=units,
            total=sum,
            sum_squares=sum_squares,
            covariate_sum=covariate_sum,
            covariate_sum_squares=covariate_sum_squares,
            cross_sum=cross_sum,
            shift=shift,
            covariate_shift=covariate_shift,
            field_path=field_path,
        )

    @property
    def mean(self) -> float:
        """ȳ = c + Σ(y − c) / n: the conversion rate or the mean per unit."""
        return self.shift + self.total / self.units

    @property
    def variance(self) -> float:
        """Sample variance s² = (Σy² − (Σy)²/n) / (n − 1)."""
        return centred_sum_of_squares(self.units, self.total, self.sum_squares, "sum_squares") / (self.units - 1)

    @property
    def std_error(self) -> float:
        """Standard error of the arm mean: Wald sqrt(p(1−p)/n) for proportions, sqrt(s²/n) for means."""
        if self.kind == "proportion":
            p = self.mean
            return math.sqrt(max(p * (1.0 - p), 0.0) / self.units)
        return math.sqrt(self.variance / self.units)

    @property
    def has_covariate(self) -> bool:
        """Whether the covariate aggregates CUPED needs are present."""
        return self.cross_sum is not None

    @property
    def covariate_mean(self) -> float | None:
        """x̄ = d + Σ(x − d) / n, or None without a covariate."""
        return None if self.covariate_sum is None else self.covariate_shift + self.covariate_sum / self.units

    @property
    def covariate_variance(self) -> float | None:
        """Sample variance of the covariate, or None without a covariate."""
        if self.covariate_sum is None or self.covariate_sum_squares is None:
            return None
        centred = centred_sum_of_squares(self.units, self.covariate_sum, self.covariate_sum_squares, "x")
        return centred / (self.units - 1)

    @property
    def covariance(self) -> float | None:
        """Sample covariance of covariate and outcome, (Σx·y − Σx·Σy/n)/(n − 1), or None."""
        if self.covariate_sum is None or self.cross_sum is None:
            return None
        return (self.cross_sum - self.covariate_sum * self.total / self.units) / (self.units - 1)


def sample_variance_arrays(units: FloatArray, total: FloatArray, sum_squares: FloatArray) -> FloatArray:
    """(Σy² − (Σy)²/n)/(n − 1) elementwise, with rounding-negative values clipped to 0."""
    centred = sum_squares - total * total / units
    return np.asarray(np.maximum(centred, 0.0) / (units - 1), dtype=np.float64)


def sample_covariance_arrays(
    units: FloatArray, sum_x: FloatArray, sum_y: FloatArray, cross_sum: FloatArray
) -> FloatArray:
    """(Σx·y − Σx·Σy/n)/(n − 1) elementwise."""
    return np.asarray((cross_sum - sum_x * sum_y / units) / (units - 1), dtype=np.float64)


def mean_variance_arrays(kind: MetricKind, units: FloatArray, total: FloatArray, sum_squares: FloatArray) -> FloatArray:
    """Variance of the arm mean (the squared standard error) elementwise, as :attr:`ArmSummary.std_error`."""
    if kind == "proportion":
        p = total / units
        return np.asarray(np.maximum(p * (1.0 - p), 0.0) / units, dtype=np.float64)
    return np.asarray(sample_variance_arrays(units, total, sum_squares) / units, dtype=np.float64)
