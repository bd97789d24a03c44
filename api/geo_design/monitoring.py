"""``monitoring: "daily"`` on a geo power or market selection request: what reading the test every day costs and gains.

Each duration's fixed-horizon power at an effect (the simulation's) is carried to the group-sequential test
the results run with ``sequential=true`` (a look on every test day, O'Brien-Fleming-type alpha spending):
its power, the share of tests stopped before the last day and the expected days to a decision
(:func:`stats.group_sequential.monitored_power`, the canonical Brownian approximation of daily sums).
"""

from __future__ import annotations

from typing import TypeVar

import msgspec

from api.geo_design.schemas import DurationDesign, MarketCandidate, MonitoredPowerPoint
from api.http.errors import invalid_field
from stats.group_sequential import monitored_power


def check_monitoring(monitoring: str, side: str, *, multi_cell: bool) -> None:
    """400 naming ``monitoring`` when the daily looks cannot be had for the requested test."""
    if monitoring == "daily" and side != "two-sided":
        raise invalid_field(
            "monitoring", "daily monitoring is two-sided, as the results' sequential test is: use side=two-sided"
        )
    if monitoring == "daily" and multi_cell:
        raise invalid_field("monitoring", "is not offered for multi-cell designs: their results have no daily looks")


Design = TypeVar("Design", DurationDesign, MarketCandidate)


def with_monitoring(design: Design, alpha: float) -> Design:
    """``design`` with the power of its test read on every one of its days, per effect size."""
    points = []
    for point in design.power_curve:
        plan = monitored_power(point.power, design.duration, alpha=alpha)
        points.append(
            MonitoredPowerPoint(
                effect_size=point.effect_size,
                power=plan.power,
                fixed_horizon_power=point.power,
                power_cost=max(point.power - plan.power, 0.0),
                stopped_early=plan.stopped_early,
                expected_days_to_decision=plan.expected_looks,
            )
        )
    return msgspec.structs.replace(design, monitored=points)
