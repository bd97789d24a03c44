"""A holdout test's dates: the plan (`test_period`), the days it actually ran (`actual_period`), and the
dates its results and calibration exports use (the actual ones, else the plan).

The actual period is kept in the columns ``actual_start`` and ``actual_end`` (UTC calendar dates): the
status changes set them (``running`` the start, ``stopped`` the end, each unless already stated), and a
caller may state them in any status, for a test registered after it ran.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec

from api.experiments.schemas import ActualPeriod, HoldoutTestDates, Period
from api.http.errors import invalid_field

#: A stated day may be tomorrow in UTC: it is already today in the time zones ahead of UTC.
DAYS_AHEAD_ALLOWED = 1


def utc_today() -> date:
    return datetime.now(UTC).date()


def check_test_period(period: Period, field: str = "test_period") -> None:
    """400 naming ``test_period.end`` when the plan ends before it starts."""
    if period.end < period.start:
        raise invalid_field(f"{field}.end", f"{period.end} is before the start {period.start}")


def check_actual_period(period: ActualPeriod, status: str, today: date) -> None:
    """400 naming the field for a stated actual period that ends before it starts, lies in the future, or
    has no end although the experiment is stopped."""
    latest = today + timedelta(days=DAYS_AHEAD_ALLOWED)
    if period.start > latest:
        raise invalid_field("actual_period.start", f"{period.start} is in the future: the test has not started")
    if period.end is None:
        if status == "stopped":
            raise invalid_field("actual_period.end", "is required: the experiment is stopped, its test has ended")
        return
    if period.end < period.start:
        raise invalid_field("actual_period.end", f"{period.end} is before the start {period.start}")
    if period.end > latest:
        raise invalid_field("actual_period.end", f"{period.end} is in the future: state the end once the test ended")


def actual_period(row: Any) -> ActualPeriod | None:
    start: date | None = row["actual_start"]
    return None if start is None else ActualPeriod(start=start, end=row["actual_end"])


def planned_period(design: dict[str, Any]) -> Period | None:
    planned = design.get("test_period")
    return None if planned is None else msgspec.convert(planned, Period)


def holdout_test_dates(row: Any, today: date) -> HoldoutTestDates | None:
    """The actual period when the test has started (up to ``today`` while it has no end), else the plan,
    else None."""
    actual = actual_period(row)
    if actual is not None:
        if actual.end is not None:
            return HoldoutTestDates(start=actual.start, end=actual.end, basis="actual")
        return HoldoutTestDates(start=actual.start, end=max(today, actual.start), basis="so_far")
    planned = planned_period(row["design"])
    if planned is None:
        return None
    return HoldoutTestDates(start=planned.start, end=planned.end, basis="planned")
