"""Small result types shared by the estimators of the numerical core, and what an interval implies."""

from __future__ import annotations

from dataclasses import dataclass

from scipy import special


@dataclass(frozen=True)
class Interval:
    """A point estimate with an optional confidence interval ``[ci_low, ci_high]``.

    ``ci_low`` / ``ci_high`` are ``None`` when the bound is not available (e.g. unbounded or not
    computed); an unbounded side may also be reported as ``-inf`` / ``+inf`` by an estimator that
    documents it.
    """

    estimate: float
    ci_low: float | None
    ci_high: float | None


def interval_standard_error(ci_low: float | None, ci_high: float | None, confidence_level: float) -> float | None:
    """The standard error a two-sided normal interval implies: ``(ci_high - ci_low) / (2 z_{(1+c)/2})``.

    The inverse of the Wald interval ``estimate -+ z_{(1+c)/2} se`` at confidence level ``c``; ``None`` when
    a bound is missing. For an interval that is not normal-based (a conformal or t interval) it is the
    standard error of the normal interval as wide.

    >>> round(interval_standard_error(0.0, 2 * 1.959964, 0.95), 6)
    1.0
    """
    if ci_low is None or ci_high is None:
        return None
    z = float(special.ndtri(0.5 + confidence_level / 2.0))
    return (ci_high - ci_low) / (2.0 * z)
