"""The one shape of every estimate with uncertainty in the API: ``{"estimate", "ci_low", "ci_high"}``."""

from __future__ import annotations

from msgspec import Struct


class Interval(Struct, frozen=True):
    """An estimate with its confidence interval; a bound is null when it is unbounded or undefined."""

    estimate: float | None
    ci_low: float | None
    ci_high: float | None
