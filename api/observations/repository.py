"""Holdout observations in PostgreSQL: the statements in ``queries.sql``, run with asyncpg."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

from api.db.database import Connection, affected_rows
from api.db.sql_queries import load_queries

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))


class ObservationRepository:
    """Reads and writes an experiment's aggregate observations; callers own the transaction."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    async def replace(self, experiment_id: UUID, columns: Sequence[Sequence[Any]]) -> int:
        """Upsert the rows given column by column (``channel_position``, ``arm``, ``units``, … as in
        ``upsert_observations``), keeping the rows they replace in the history; returns how many were replaced."""
        archived = await self.connection.execute(QUERIES["archive_observations"], experiment_id, columns[0], columns[1])
        await self.connection.execute(QUERIES["upsert_observations"], experiment_id, *columns)
        return affected_rows(archived)
