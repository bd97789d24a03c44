"""The analysed window of a geo experiment's panel: markets by dates, the pre-period and test (and cool-down)
as column slices, read from the dataset and made complete under the request's missing-data policy.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import date
from uuid import UUID

import numpy as np

from api.db.database import Connection
from api.geo.markets import MarketNames
from api.geo.pivot import pivot_rows
from api.geo.preparation import prepare_panel
from api.geo.repository import GeoRepository, Row
from api.geo.service import dataset_at
from api.http.errors import Conflict, invalid_field
from stats.geo.panel_gaps import MissingPolicy


@dataclass(frozen=True)
class GeoWindow:
    """The analysed panel: markets (rows), dates (columns), and the two periods as column slices."""

    panel: np.ndarray
    geos: list[str]
    dates: list[date]
    pre: slice
    post: slice
    spend: np.ndarray  # same shape as ``panel``; NaN where a row has no spend
    cooldown: slice | None = None  # the cool-down dates after the test, when the experiment has them
    dataset_version: int = 1  # the version of the dataset read


async def load_window(
    connection: Connection,
    dataset_id: UUID,
    treated: list[str],
    pre: tuple[date, date],
    test: tuple[date, date],
    cooldown: tuple[date, date] | None = None,
    version: int | None = None,
) -> GeoWindow:
    """The panel of the pre-period, test and cool-down dates as of ``version`` (the latest by default), NaN where
    a market has no value."""
    repository = GeoRepository(connection)
    dataset = await dataset_at(connection, dataset_id, version)
    if dataset is None:
        raise Conflict(f"The experiment's geo dataset {dataset_id} no longer exists")
    geos: list[str] = list(dataset["geos"])
    MarketNames(geos, dataset_id).resolve("treatment_markets", treated)  # stored in the dataset's spelling
    if pre[0] > pre[1] or test[0] > test[1] or test[0] <= pre[1]:
        raise invalid_field("test_period", "the pre-period must end before the test period starts")
    uncovered: list[str] = []
    if dataset["first_date"] > pre[0]:
        uncovered.append(f"the pre-period starts {pre[0]} but the dataset starts {dataset['first_date']}")
    if dataset["last_date"] < test[1]:
        uncovered.append(f"the test period ends {test[1]} but the dataset ends {dataset['last_date']}")
    if cooldown is not None and dataset["last_date"] < cooldown[1]:
        uncovered.append(f"the cool-down ends {cooldown[1]} but the dataset ends {dataset['last_date']}")
    if uncovered:
        raise Conflict("The dataset does not cover the experiment's periods: " + "; ".join(uncovered))
    last = test[1] if cooldown is None else cooldown[1]
    rows = await repository.panel_window(dataset_id, pre[0], last, dataset["version"])
    window = await asyncio.to_thread(_pivot, rows, sorted(geos), pre, test, cooldown)
    return replace(window, dataset_version=dataset["version"])


def _pivot(
    rows: list[Row],
    geos: list[str],
    pre: tuple[date, date],
    test: tuple[date, date],
    cooldown: tuple[date, date] | None,
) -> GeoWindow:
    dates = sorted({r["date"] for r in rows})
    pre_dates = [d for d in dates if pre[0] <= d <= pre[1]]
    test_dates = [d for d in dates if test[0] <= d <= test[1]]
    cooldown_dates = [] if cooldown is None else [d for d in dates if cooldown[0] <= d <= cooldown[1]]
    missing: list[str] = []
    if not test_dates:
        missing.append(f"the dataset has no date in the test period {test[0]}..{test[1]}")
    if cooldown is not None and not cooldown_dates:
        missing.append(f"the dataset has no date in the cool-down {cooldown[0]}..{cooldown[1]}")
    if len(pre_dates) < 3:
        missing.append(f"the pre-period has {len(pre_dates)} dates with data; at least 3 are needed")
    if missing:
        raise Conflict("The dataset does not cover the experiment's periods: " + "; ".join(missing))
    # Only the dates of the periods are analysed (a gap between them is skipped). Missing market-dates
    # stay NaN here; :func:`api.geo.preparation.prepare_panel` handles them under the requested policy.
    axis = pre_dates + test_dates + cooldown_dates
    end_of_test = len(pre_dates) + len(test_dates)
    return GeoWindow(
        panel=pivot_rows(rows, geos, axis),
        geos=geos,
        dates=axis,
        pre=slice(0, len(pre_dates)),
        post=slice(len(pre_dates), end_of_test),
        spend=pivot_rows(rows, geos, axis, "spend"),
        cooldown=slice(end_of_test, len(axis)) if cooldown_dates else None,
    )


def prepared_window(
    window: GeoWindow, protected: set[str], excluded: set[str], missing: MissingPolicy, role: str
) -> tuple[GeoWindow, list[str]]:
    """The window with the ``excluded`` markets left out and its gaps handled (:func:`prepare_panel`)."""
    n_cooldown = 0 if window.cooldown is None else window.cooldown.stop - window.cooldown.start
    periods = (window.pre.stop, window.post.stop - window.post.start, n_cooldown)
    done = prepare_panel(
        window.panel, window.spend, window.geos, window.dates, periods, protected, excluded, missing, role
    )
    end_of_test = done.n_pre + done.n_test
    prepared = GeoWindow(
        panel=done.panel,
        geos=done.geos,
        dates=done.dates,
        pre=slice(0, done.n_pre),
        post=slice(done.n_pre, end_of_test),
        spend=done.spend,
        cooldown=slice(end_of_test, end_of_test + done.n_cooldown) if done.n_cooldown else None,
        dataset_version=window.dataset_version,
    )
    return prepared, done.notes


def test_window(window: GeoWindow) -> GeoWindow:
    """The pre-period and test dates only (the cool-down left out)."""
    end = window.post.stop
    return GeoWindow(
        window.panel[:, :end],
        window.geos,
        window.dates[:end],
        window.pre,
        window.post,
        window.spend[:, :end],
        dataset_version=window.dataset_version,
    )


def cooldown_window(window: GeoWindow) -> GeoWindow | None:
    """The pre-period then the cool-down dates, the cool-down in the place of the test (``post``)."""
    if window.cooldown is None:
        return None
    columns = np.r_[
        np.arange(window.pre.start, window.pre.stop), np.arange(window.cooldown.start, window.cooldown.stop)
    ]
    n_pre = window.pre.stop - window.pre.start
    return GeoWindow(
        panel=window.panel[:, columns],
        geos=window.geos,
        dates=[window.dates[c] for c in columns],
        pre=slice(0, n_pre),
        post=slice(n_pre, columns.size),
        spend=window.spend[:, columns],
        dataset_version=window.dataset_version,
    )
