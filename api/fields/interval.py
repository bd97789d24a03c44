"""The one shape of every estimate with uncertainty in the API: ``{"estimate", "ci_low", "ci_high"}``."""

from __future__ import annotations

import math

from msgspec import Struct

from stats.intervals import Interval as StatsInterval


class Interval(Struct, frozen=True):
    """An estimate with its confidence interval; a bound is null when it is unbounded or undefined."""

    estimate: float | None
    ci_low: float | None
    ci_high: float | None


def finite_or_none(value: float | None) -> float | None:
    """``value`` as a float when it is finite; ``None`` (JSON null) for None, NaN and ±inf."""
    return None if value is None or not math.isfinite(value) else float(value)


def estimate_of(interval: StatsInterval) -> Interval:
    """A numerical interval of :mod:`stats` in the API's shape, every non-finite figure null."""
    return Interval(
        estimate=finite_or_none(interval.estimate),
        ci_low=finite_or_none(interval.ci_low),
        ci_high=finite_or_none(interval.ci_high),
    )
