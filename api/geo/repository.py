"""Geo datasets in PostgreSQL: the statements in ``queries.sql``, run with asyncpg.

Every read of a panel is as of a version (:mod:`sql/0017_geo_dataset_versions.sql`): the rows that version
had, whatever was appended or corrected after it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from api.auth.caller import acting_workspace, adopt_workspace, workspace_filter
from api.db.bulk_copy import copy_until_lost
from api.db.database import Connection, affected_rows
from api.db.sql_queries import load_queries
from api.geo.binary_copy import COLUMNS

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))

Row = asyncpg.Record


@dataclass(frozen=True)
class PanelSummary:
    """What a dataset states of its panel as of a version: the summary columns of ``geo_datasets`` and
    ``geo_dataset_versions``, in the order the statements take them."""

    geo_count: int
    date_count: int
    row_count: int
    first_date: date
    last_date: date
    has_spend: bool
    geos: list[str]
    quality: dict[str, Any]

    def values(self) -> tuple[Any, ...]:
        """The summary as the statements' parameters, in order."""
        return tuple(getattr(self, column.name) for column in fields(self))

    @classmethod
    def of_row(cls, row: Row) -> PanelSummary:
        """The summary a dataset row (or a version's) states."""
        return cls(**{column.name: row[column.name] for column in fields(cls)})


class GeoRepository:
    """Reads and writes geo datasets; callers own the transaction."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    async def insert_dataset(
        self,
        *,
        dataset_id: UUID,
        name: str,
        summary: PanelSummary,
        created_by: UUID | None,
    ) -> Row:
        row: Row | None = await self.connection.fetchrow(
            QUERIES["insert_dataset"], dataset_id, name, *summary.values(), created_by, acting_workspace()
        )
        assert row is not None
        return row

    async def insert_version(
        self,
        dataset_id: UUID,
        version: int,
        *,
        created_by: UUID | None,
        idempotency_key: str | None,
        rows_added: int,
        rows_replaced: int,
        added: tuple[date, date],
        new_geos: list[str],
        summary: Row,
        created_at: datetime | None = None,
    ) -> Row:
        """Record ``version``: what it added, and the dataset as it stands now (``summary``, a dataset row)."""
        row: Row | None = await self.connection.fetchrow(
            QUERIES["insert_dataset_version"],
            dataset_id,
            version,
            created_by,
            idempotency_key,
            rows_added,
            rows_replaced,
            added[0],
            added[1],
            new_geos,
            *PanelSummary.of_row(summary).values(),
            created_at,
        )
        assert row is not None
        return row

    async def update_latest(self, dataset_id: UUID, version: int, summary: PanelSummary) -> Row:
        """Make the dataset's summary columns describe ``version``, its latest."""
        row: Row | None = await self.connection.fetchrow(
            QUERIES["update_dataset_latest"], dataset_id, version, *summary.values()
        )
        assert row is not None, "the caller holds the row lock"
        return row

    async def copy_observations(self, payload: bytes) -> None:
        """Write observation rows (:data:`api.geo.binary_copy.COLUMNS`) from a binary ``COPY`` payload."""

        async def chunks() -> AsyncIterator[bytes]:  # (raw bytes would be taken for a file path)
            yield payload

        await copy_until_lost(
            self.connection,
            self.connection.copy_to_table("geo_observations", source=chunks(), columns=list(COLUMNS), format="binary"),
        )

    async def get(self, dataset_id: UUID, version: int | None = None) -> Row | None:
        """The dataset as of ``version`` (latest when ``None``): ``None`` when the dataset or version is unknown,
        or the dataset is not in the request's workspace (:func:`api.auth.caller.workspace_filter`)."""
        row: Row | None = await self.connection.fetchrow(
            QUERIES["select_dataset"], dataset_id, version, workspace_filter()
        )
        if row is not None:
            adopt_workspace(row["workspace"])
        return row

    async def latest_version(self, dataset_id: UUID) -> int | None:
        version: int | None = await self.connection.fetchval(
            QUERIES["select_dataset_latest_version"], dataset_id, workspace_filter()
        )
        return version

    async def lock_for_append(self, dataset_id: UUID) -> Row | None:
        row: Row | None = await self.connection.fetchrow(
            QUERIES["lock_dataset_for_append"], dataset_id, workspace_filter()
        )
        return row

    async def versions(self, dataset_id: UUID) -> list[Row]:
        rows: list[Row] = await self.connection.fetch(QUERIES["select_versions"], dataset_id, workspace_filter())
        return rows

    async def list_page(self, *, name: str | None, after: tuple[datetime, UUID] | None, limit: int) -> list[Row]:
        created_at, last_id = after if after else (None, None)
        rows: list[Row] = await self.connection.fetch(
            QUERIES["list_datasets"], name, created_at, last_id, limit, workspace_filter()
        )
        return rows

    async def series(self, dataset_id: UUID, geo: str | None, version: int) -> list[Row]:
        rows: list[Row] = await self.connection.fetch(QUERIES["select_series"], dataset_id, geo, version)
        return rows

    async def panel_window(self, dataset_id: UUID, start: date, end: date, version: int) -> list[Row]:
        rows: list[Row] = await self.connection.fetch(QUERIES["select_panel_window"], dataset_id, start, end, version)
        return rows

    async def current_panel(self, dataset_id: UUID, geos: Sequence[str]) -> bytes:
        """Every current row as a binary ``COPY ... TO STDOUT`` of ``(code int4, day int4, kpi float8)``: the
        market's position in ``geos`` (which must hold every market of the dataset), days since 2000-01-01 and
        the KPI (:func:`api.geo.binary_copy.decode_panel` reads it as columns; no record per row in Python)."""
        received = bytearray()

        async def keep(chunk: bytes) -> None:
            received.extend(chunk)

        await self.connection.copy_from_query(
            QUERIES["select_current_panel"], dataset_id, list(geos), output=keep, format="binary"
        )
        return bytes(received)

    async def collisions(self, dataset_id: UUID, version: int, limit: int) -> list[Row]:
        """Market-dates of ``version`` already held by an earlier one (each row carries the ``total``)."""
        rows: list[Row] = await self.connection.fetch(QUERIES["select_collisions"], dataset_id, version, limit)
        return rows

    async def mark_replaced(self, dataset_id: UUID, version: int) -> int:
        """Mark the earlier rows of the market-dates ``version`` holds as replaced by it; how many."""
        return affected_rows(await self.connection.execute(QUERIES["mark_replaced"], dataset_id, version))

    async def market_dates(
        self, dataset_id: UUID, markets: Sequence[str], start: date, end: date, version: int
    ) -> dict[str, list[date]]:
        """The dates between ``start`` and ``end`` on which each of ``markets`` has a row, as of ``version``."""
        rows = await self.connection.fetch(
            QUERIES["select_market_dates"], dataset_id, list(markets), start, end, version
        )
        return {row["geo"]: list(row["dates"]) for row in rows}

    async def market_row_counts(
        self, dataset_id: UUID, markets: Sequence[str], start: date, end: date, version: int
    ) -> dict[str, int]:
        """How many rows each of ``markets`` has between ``start`` and ``end``, as of ``version``."""
        rows = await self.connection.fetch(
            QUERIES["select_market_row_counts"], dataset_id, list(markets), start, end, version
        )
        return {row["geo"]: int(row["days"]) for row in rows}

    async def panel_window_batches(
        self, dataset_id: UUID, start: date, end: date, version: int, batch_rows: int
    ) -> AsyncIterator[list[Row]]:
        """:meth:`panel_window`'s rows in batches of ``batch_rows`` (a server-side cursor, in a transaction):
        a large panel is never held as rows all at once, and its reader can report progress."""
        async with self.connection.transaction():
            cursor = await self.connection.cursor(QUERIES["select_panel_window"], dataset_id, start, end, version)
            while batch := await cursor.fetch(batch_rows):
                yield batch
