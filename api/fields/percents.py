"""Percent for fraction: the mistake of sending 10 for a 10% lift.

Every lift in the API is a fraction (0.1 = +10%). A lift of 100% or more is possible but rare, and far more
often a percent typed where a fraction was meant (a relative MDE of 10 designs a test of 24 users; geo effect
sizes of 2.5-10 report an MDE of +250%). Such values are answered, with a warning that starts with the field's
path and asks whether a percent was meant; what cannot be (a conversion rate lifted past 1) is refused where
it is checked.
"""

from __future__ import annotations

from collections.abc import Sequence

RARE_LIFT = 1.0  # +100%: at or beyond it, a lift is more likely a percent than a fraction


def percent_warning(field: str, value: float) -> str | None:
    """A warning for one lift of 100% or more (``None`` below that)."""
    if abs(value) < RARE_LIFT:
        return None
    return (
        f"{field}: {value:g} is a lift of {value:+.0%}; lifts are fractions (0.1 = +10%) and lifts of 100% or "
        f"more are possible but rare: if you meant {value:g}%, send {value / 100:g}"
    )


def percent_warnings(field: str, values: Sequence[float]) -> list[str]:
    """One warning for the lifts of 100% or more in the list ``field`` (empty when there are none), naming the
    first such item's path."""
    large = [(i, v) for i, v in enumerate(values) if abs(v) >= RARE_LIFT]
    if not large:
        return []
    first = large[0][0]
    listed = ", ".join(f"{v:g} ({v:+.0%})" for _, v in large)
    return [
        f"{field}[{first}]: {listed} {'is a lift' if len(large) == 1 else 'are lifts'} of 100% or more; lifts "
        f"are fractions (0.05 = +5%) and such lifts are possible but rare: if you meant percents, send "
        f"{', '.join(f'{v / 100:g}' for _, v in large)}"
    ]
