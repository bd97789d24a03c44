"""The job queue's figures for ``/metrics``: the statements in ``queries.sql``, run with asyncpg."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from api.db.database import Connection
from api.db.sql_queries import load_queries

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))


class JobStatsRepository:
    """Reads counts of the ``jobs`` table (read only)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    async def queue_depth(self) -> list[asyncpg.Record]:
        """Rows ``(kind, status, jobs)`` of the queued and running jobs."""
        rows: list[asyncpg.Record] = await self.connection.fetch(QUERIES["job_queue_depth"])
        return rows

    async def durations(self, bounds: list[float]) -> list[asyncpg.Record]:
        """Rows ``(kind, status, bucket, jobs, seconds)`` of the finished jobs (``bucket`` indexes ``bounds``)."""
        rows: list[asyncpg.Record] = await self.connection.fetch(QUERIES["job_durations"], bounds)
        return rows
