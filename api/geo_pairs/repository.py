"""Matched-pair designs in PostgreSQL: the statements in ``queries.sql``, run with asyncpg."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from api.auth.caller import workspace_filter
from api.db.database import Connection
from api.db.sql_queries import load_queries

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))

Row = asyncpg.Record


class PairDesignRepository:
    """Reads a dataset's per-geo sums and stores finished designs; callers own the transaction."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    async def window_dates(self, dataset_id: UUID, start: date, end: date, version: int) -> list[date]:
        rows = await self.connection.fetch(QUERIES["select_window_dates"], dataset_id, start, end, version)
        return [row["date"] for row in rows]

    async def geo_sums(
        self,
        dataset_id: UUID,
        pre_period: tuple[date, date],
        evaluation: tuple[date, date],
        latest_start: date,
        version: int,
    ) -> list[Row]:
        """Per geo: dates present, training/evaluation response and spend, latest-window response (as of
        ``version``)."""
        rows: list[Row] = await self.connection.fetch(
            QUERIES["select_pair_design_sums"], dataset_id, *pre_period, *evaluation, latest_start, version
        )
        return rows

    async def save(self, design_id: UUID, dataset_id: UUID, request: Any, result: Any) -> None:
        """Store (or replace, on a retry) the result of the design computed by job ``design_id``."""
        await self.connection.execute(QUERIES["upsert_matched_pair_design"], design_id, dataset_id, request, result)

    async def get(self, design_id: UUID) -> Row | None:
        row: Row | None = await self.connection.fetchrow(
            QUERIES["select_matched_pair_design"], design_id, workspace_filter()
        )
        return row
