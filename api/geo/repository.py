"""Geo datasets in PostgreSQL: the statements in ``queries.sql``, run with asyncpg."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from api.bulk_copy import copy_until_lost
from api.database import Connection
from api.sql_queries import load_queries

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))

Row = asyncpg.Record
OBSERVATION_COLUMNS = ("dataset_id", "geo", "date", "kpi", "spend")


class GeoRepository:
    """Reads and writes geo datasets; callers own the transaction."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    async def insert_dataset(
        self,
        *,
        dataset_id: UUID,
        name: str,
        geo_count: int,
        date_count: int,
        row_count: int,
        first_date: date,
        last_date: date,
        has_spend: bool,
        geos: list[str],
        quality: dict[str, Any],
        created_by: UUID | None,
    ) -> Row:
        row: Row | None = await self.connection.fetchrow(
            QUERIES["insert_dataset"],
            dataset_id,
            name,
            geo_count,
            date_count,
            row_count,
            first_date,
            last_date,
            has_spend,
            geos,
            quality,
            created_by,
        )
        assert row is not None
        return row

    async def copy_observations(self, payload: bytes) -> None:
        """Write observation rows ``(dataset_id, geo, date, kpi, spend)`` from a binary ``COPY`` payload
        (``api.geo.binary_copy``)."""

        async def chunks() -> AsyncIterator[bytes]:  # (raw bytes would be taken for a file path)
            yield payload

        await copy_until_lost(
            self.connection,
            self.connection.copy_to_table(
                "geo_observations", source=chunks(), columns=list(OBSERVATION_COLUMNS), format="binary"
            ),
        )

    async def get(self, dataset_id: UUID) -> Row | None:
        row: Row | None = await self.connection.fetchrow(QUERIES["select_dataset"], dataset_id)
        return row

    async def geos(self, dataset_id: UUID) -> list[str] | None:
        geos: list[str] | None = await self.connection.fetchval(QUERIES["select_dataset_geos"], dataset_id)
        return geos

    async def series(self, dataset_id: UUID, geo: str | None) -> list[Row]:
        rows: list[Row] = await self.connection.fetch(QUERIES["select_series"], dataset_id, geo)
        return rows

    async def panel_window(self, dataset_id: UUID, start: date, end: date) -> list[Row]:
        rows: list[Row] = await self.connection.fetch(QUERIES["select_panel_window"], dataset_id, start, end)
        return rows

    async def panel_window_batches(
        self, dataset_id: UUID, start: date, end: date, batch_rows: int
    ) -> AsyncIterator[list[Row]]:
        """:meth:`panel_window`'s rows in batches of ``batch_rows`` (a server-side cursor, in a transaction):
        a large panel is never held as rows all at once, and its reader can report progress."""
        async with self.connection.transaction():
            cursor = await self.connection.cursor(QUERIES["select_panel_window"], dataset_id, start, end)
            while batch := await cursor.fetch(batch_rows):
                yield batch
