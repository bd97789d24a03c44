"""How much of a geo test's period a dataset holds: the coverage ``GET /v1/experiments/{id}`` reports and the
409 a result on a period not yet covered answers.

The test period is covered through the last day on which every market in use has a row, counting from its
first day. Markets in use: a paired test's geos; else the treated markets and every other market not excluded
from the controls that has a row on every pre-period date (a control with pre-period gaps is left out by the
default ``missing=drop_market`` analysis, so its test days are not awaited). Dates are those of the dataset's
axis (its first date plus multiples of its date step).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from uuid import UUID

import msgspec

from api.db.database import Connection
from api.geo.repository import GeoRepository, Row
from api.geo.schemas import GeoMarketDate, GeoTestCoverage
from api.geo.service import dataset_at
from api.http.errors import Conflict

LISTED_MISSING = 100
LISTED_IN_DETAIL = 5


def axis_dates(first_date: date, step_days: int, start: date, end: date) -> list[date]:
    """The dates of the axis ``first_date + k * step_days`` between ``start`` and ``end`` (both included)."""
    offset = (start - first_date).days % step_days
    day = start + timedelta(days=(step_days - offset) % step_days)
    dates: list[date] = []
    while day <= end:
        dates.append(day)
        day += timedelta(days=step_days)
    return dates


def coverage_of(
    version: int, markets: Sequence[str], present: dict[str, set[date]], test_dates: Sequence[date]
) -> GeoTestCoverage:
    """The coverage of ``test_dates`` by ``markets`` whose rows are on the dates ``present`` (pure)."""
    missing = [
        GeoMarketDate(geo=geo, date=day) for day in test_dates for geo in markets if day not in present.get(geo, ())
    ]
    first_gap = min((m.date for m in missing), default=None)
    covered = [d for d in test_dates if first_gap is None or d < first_gap]
    return GeoTestCoverage(
        dataset_version=version,
        complete=not missing,
        test_dates=len(test_dates),
        covered_dates=len(covered),
        covered_through=covered[-1] if covered else None,
        markets_in_use=len(markets),
        missing_count=len(missing),
        missing_dates=sorted({m.date for m in missing}),
        missing=missing[:LISTED_MISSING],
        listed_limit=LISTED_MISSING,
    )


async def markets_in_use(
    connection: Connection,
    dataset: Row,
    treated: Sequence[str],
    pairs: Sequence[Sequence[str]] | None,
    excluded: Sequence[str],
    pre: tuple[date, date],
) -> list[str]:
    """The markets whose rows a test period awaits (see the module docstring), sorted."""
    if pairs:
        return sorted({geo for pair in pairs for geo in pair})
    left_out = set(treated) | set(excluded)
    controls = [g for g in dataset["geos"] if g not in left_out]
    step = int(_quality_step(dataset))
    pre_dates = len(axis_dates(dataset["first_date"], step, pre[0], pre[1]))
    counts = await GeoRepository(connection).market_row_counts(
        dataset["id"], controls, pre[0], pre[1], dataset["version"]
    )
    complete = [g for g in controls if counts.get(g, 0) >= pre_dates]
    return sorted({*treated, *complete})


def _quality_step(dataset: Row) -> int:
    quality = dataset["quality"]
    if isinstance(quality, str):
        quality = msgspec.json.decode(quality)
    return int(quality.get("date_step_days", 1))


async def period_coverage(
    connection: Connection,
    dataset_id: UUID,
    version: int | None,
    *,
    treated: Sequence[str],
    pairs: Sequence[Sequence[str]] | None,
    excluded: Sequence[str],
    pre: tuple[date, date],
    test: tuple[date, date],
) -> GeoTestCoverage | None:
    """The test period's coverage by the dataset as of ``version`` (latest when ``None``); ``None`` when the
    dataset does not exist (400 naming ``dataset_version`` for a version it does not have)."""
    dataset = await dataset_at(connection, dataset_id, version)
    if dataset is None:
        return None
    markets = await markets_in_use(connection, dataset, treated, pairs, excluded, pre)
    test_dates = axis_dates(dataset["first_date"], _quality_step(dataset), test[0], test[1])
    found = await GeoRepository(connection).market_dates(dataset_id, markets, test[0], test[1], dataset["version"])
    present = {geo: set(dates) for geo, dates in found.items()}
    return coverage_of(dataset["version"], markets, present, test_dates)


def not_covered(coverage: GeoTestCoverage, test: tuple[date, date]) -> Conflict:
    """The 409 of a result asked on a test period the dataset does not cover yet, naming the missing dates."""
    days = coverage.missing_dates
    listed = ", ".join(d.isoformat() for d in days[:LISTED_IN_DETAIL])
    more = f" and {len(days) - LISTED_IN_DETAIL} more dates" if len(days) > LISTED_IN_DETAIL else ""
    through = (
        f"covered through {coverage.covered_through}" if coverage.covered_through else "not covered on any day yet"
    )
    cells = ", ".join(f"{m.geo!r} on {m.date}" for m in coverage.missing[:LISTED_IN_DETAIL])
    return Conflict(
        f"The test period {test[0]}..{test[1]} is {through} (dataset version {coverage.dataset_version}): "
        f"{coverage.missing_count} market-date(s) missing, on {listed}{more} (for example {cells}). Append the "
        "missing days with POST /v1/geo/datasets/{id}/rows, then ask again",
        [("test_period", f"no data yet on {d.isoformat()}") for d in days[:LISTED_MISSING]],
    )
