"""Finished market selections in PostgreSQL: the statements in ``queries.sql``, run with asyncpg."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from api.auth.caller import workspace_filter
from api.db.database import Connection
from api.db.sql_queries import load_queries

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))

Row = asyncpg.Record


class MarketSelectionRepository:
    """Reads and writes finished market selections; callers own the transaction."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    async def save(self, selection_id: UUID, dataset_id: UUID, request: Any, result: Any) -> None:
        """Store (or replace, on a retry) the result of the selection computed by job ``selection_id``."""
        await self.connection.execute(QUERIES["upsert_market_selection"], selection_id, dataset_id, request, result)

    async def get(self, selection_id: UUID) -> Row | None:
        row: Row | None = await self.connection.fetchrow(
            QUERIES["select_market_selection"], selection_id, workspace_filter()
        )
        return row
