"""The history a geo design simulates on: a stored dataset's KPI panel over the chosen dates.

A dataset's version never changes once written (appends make new versions), so a worker process keeps
the panels it loaded by dataset, version and history (a few, least recently used first out) and the chunks
of one market selection read the database once.
"""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from uuid import UUID

import numpy as np
from numpy.typing import NDArray

from api.db.database import Connection
from api.geo.markets import MarketNames
from api.geo.repository import GeoRepository, Row
from api.geo.service import dataset_at
from api.geo_design.schemas import HistoryPeriod
from api.http.errors import Conflict, NotFound, invalid_field
from stats.geo.panel_quality import pivot_long_to_panel

FloatArray = NDArray[np.float64]
LISTED_GAPS = 5
CACHED_PANELS = 8
PANEL_BATCH_ROWS = 50_000


@dataclass(frozen=True)
class DesignPanel:
    """KPI per market (rows, sorted by name) and date (columns, in order) over the design's history."""

    dataset_id: UUID
    panel: FloatArray
    geos: tuple[str, ...]
    dates: tuple[date, ...]
    dataset_version: int = 1

    @property
    def history(self) -> HistoryPeriod:
        return HistoryPeriod(start=self.dates[0], end=self.dates[-1])

    @property
    def names(self) -> MarketNames:
        """The panel's markets, for matching requested names regardless of case."""
        return MarketNames(self.geos, self.dataset_id)

    def spelt(self, markets: Sequence[str]) -> list[str]:
        """``markets`` in the dataset's spelling (unknown names unchanged, refused where they are used)."""
        names = self.names
        return [names.canonical(m) for m in markets]

    def rows_of(self, field: str, markets: Sequence[str]) -> tuple[int, ...]:
        """Panel rows of ``markets``; a 400 naming ``field`` for an unknown or repeated market."""
        index = {g: i for i, g in enumerate(self.geos)}
        markets = self.names.resolve(field, markets)
        if len(set(markets)) != len(markets):
            raise invalid_field(field, "lists a market twice")
        return tuple(index[m] for m in markets)

    def without(self, field: str, markets: Sequence[str], treated: Sequence[str]) -> DesignPanel:
        """The panel without ``markets`` (left out of the controls, so of the whole simulation); a 400 naming
        ``field`` for an unknown or repeated market, or one of the ``treated`` markets."""
        rows = self.rows_of(field, markets)
        if not rows:
            return self
        treated_too = sorted({self.names.canonical(m) for m in markets} & {self.names.canonical(m) for m in treated})
        if treated_too:
            raise invalid_field(field, f"{', '.join(map(repr, treated_too))} cannot be both treated and excluded")
        keep = np.setdiff1d(np.arange(len(self.geos)), rows)
        refuse_zero_kpi(self.panel[keep], f"once {field} are left out")
        return DesignPanel(
            dataset_id=self.dataset_id,
            panel=self.panel[keep],
            geos=tuple(self.geos[i] for i in keep),
            dates=self.dates,
            dataset_version=self.dataset_version,
        )


def refuse_zero_kpi(kpi: np.ndarray, where: str = "") -> None:
    """409 when the KPI is 0 on every market and date: a design has no lift to measure (nor a share of KPI
    to treat, nor a pair to match on)."""
    if not kpi.sum() > 0.0:
        raise Conflict(
            f"The dataset's KPI is 0 on every market and date of the history{' ' + where if where else ''}: a design "
            "has no lift to measure (and no share of KPI to treat); choose a `history` with data"
        )


_cache: OrderedDict[tuple[UUID, int, date | None, date | None], DesignPanel] = OrderedDict()


def _forget(dataset_id: UUID) -> None:
    for key in [k for k in _cache if k[0] == dataset_id]:
        del _cache[key]


async def _dataset_window(
    connection: Connection, dataset_id: UUID, history: HistoryPeriod | None, version: int | None
) -> tuple[Row, date, date]:
    """The dataset's row as of ``version`` (the latest by default) and the first and last date of ``history`` in
    it: 404 unknown dataset, 400 bad dates or unknown ``dataset_version``."""
    dataset = await dataset_at(connection, dataset_id, version)
    if dataset is None:
        _forget(dataset_id)
        raise NotFound(f"No geo dataset with id {dataset_id}")
    start: date = dataset["first_date"] if history is None else history.start
    end: date = dataset["last_date"] if history is None else history.end
    if history is not None:
        if history.start > history.end:
            raise invalid_field("history", "start must not be after end")
        if history.start < dataset["first_date"] or history.end > dataset["last_date"]:
            raise invalid_field(
                "history", f"must lie within the dataset's dates {dataset['first_date']}..{dataset['last_date']}"
            )
    return dataset, start, end


@dataclass(frozen=True)
class PanelOutline:
    """What the dataset's row says of a design's panel, without reading its observations."""

    dataset_id: UUID
    dataset_version: int
    geos: tuple[str, ...]
    days: int

    @property
    def cells(self) -> int:
        return len(self.geos) * self.days

    def resolve_markets(self, field: str, markets: Sequence[str]) -> list[str]:
        """``markets`` in the dataset's spelling; a 400 naming ``field`` for an unknown market (with the closest
        known names) or one listed twice."""
        spelt = MarketNames(self.geos, self.dataset_id).resolve(field, markets)
        if len(set(spelt)) != len(spelt):
            raise invalid_field(field, "lists a market twice")
        return spelt


async def outline_design_panel(
    connection: Connection, dataset_id: UUID, history: HistoryPeriod | None, version: int | None = None
) -> PanelOutline:
    """The markets and days of the design's panel from the dataset's row alone (404 unknown, 400 bad dates or
    version): cheap whatever the panel's size, so a request can decide to hand a large panel to a worker unread."""
    dataset, start, end = await _dataset_window(connection, dataset_id, history, version)
    return PanelOutline(
        dataset_id=dataset_id,
        dataset_version=int(dataset["version"]),
        geos=tuple(sorted(dataset["geos"])),
        days=(end - start).days + 1,
    )


async def load_design_panel(
    connection: Connection,
    dataset_id: UUID,
    history: HistoryPeriod | None,
    version: int | None = None,
    progress: Callable[[float], None] | None = None,
) -> DesignPanel:
    """The dataset's panel over ``history`` (all of it by default) as of ``version`` (the latest by default): 404
    unknown dataset, 400 bad dates or unknown ``dataset_version``, 409 holes.

    The dataset's row is read every time, so a deleted dataset is never answered from the cache. The
    observations are read in batches of ``PANEL_BATCH_ROWS``, each turned into index and value columns at
    once (not kept as rows), with the share read so far reported to ``progress``.
    """
    dataset, start, end = await _dataset_window(connection, dataset_id, history, version)
    at: int = dataset["version"]
    key = (dataset_id, at, history.start if history else None, history.end if history else None)
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    geos = sorted(dataset["geos"])
    expected = max(len(geos) * ((end - start).days + 1), 1)
    geo_index = {g: i for i, g in enumerate(geos)}
    columns: list[tuple[NDArray[np.int64], NDArray[np.int64], FloatArray]] = []
    read = 0
    repository = GeoRepository(connection)
    async for batch in repository.panel_window_batches(dataset_id, start, end, at, PANEL_BATCH_ROWS):
        columns.append(await asyncio.to_thread(_batch_columns, batch, geo_index))
        read += len(batch)
        if progress is not None:
            progress(min(1.0, read / expected))
    panel = await asyncio.to_thread(_pivot, dataset_id, columns, geos, at)
    _cache[key] = panel
    while len(_cache) > CACHED_PANELS:
        _cache.popitem(last=False)
    return panel


def _batch_columns(
    batch: list[Row], geo_index: dict[str, int]
) -> tuple[NDArray[np.int64], NDArray[np.int64], FloatArray]:
    """A batch of ``(geo, date, kpi)`` rows as columns: market index, date ordinal, KPI (NaN for NULL)."""
    count = len(batch)
    return (
        np.fromiter((geo_index[r["geo"]] for r in batch), dtype=np.int64, count=count),
        np.fromiter((r["date"].toordinal() for r in batch), dtype=np.int64, count=count),
        np.fromiter((math.nan if r["kpi"] is None else r["kpi"] for r in batch), dtype=np.float64, count=count),
    )


def _pivot(
    dataset_id: UUID,
    columns: list[tuple[NDArray[np.int64], NDArray[np.int64], FloatArray]],
    geos: list[str],
    version: int,
) -> DesignPanel:
    geo_rows = np.concatenate([c[0] for c in columns]) if columns else np.zeros(0, dtype=np.int64)
    ordinals = np.concatenate([c[1] for c in columns]) if columns else np.zeros(0, dtype=np.int64)
    kpi = np.concatenate([c[2] for c in columns]) if columns else np.zeros(0)
    days, date_rows = np.unique(ordinals, return_inverse=True)
    dates = [date.fromordinal(int(d)) for d in days]
    panel = pivot_long_to_panel(geo_rows, date_rows.astype(np.int64), kpi, len(geos), len(dates))
    if np.isnan(panel).any():
        gi, dj = np.nonzero(np.isnan(panel))
        listed = ", ".join(f"{geos[g]} on {dates[d]}" for g, d in zip(gi[:LISTED_GAPS], dj[:LISTED_GAPS], strict=True))
        raise Conflict(
            f"The dataset has no value for {gi.size} market-dates of the history (for example {listed}); a design "
            "needs every market on every date: fill the gaps or choose a `history` without them"
        )
    refuse_zero_kpi(panel)
    panel.setflags(write=False)
    return DesignPanel(
        dataset_id=dataset_id, panel=panel, geos=tuple(geos), dates=tuple(dates), dataset_version=version
    )
