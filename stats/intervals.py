"""Small result types shared by the estimators of the numerical core."""

from __future__ import annotations

from dataclasses import dataclass


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
