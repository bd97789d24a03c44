"""Assignments in PostgreSQL: the statements in ``queries.sql``, run with asyncpg."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from uuid import UUID

import asyncpg

from api.auth.caller import workspace_filter
from api.db.bulk_copy import copy_until_lost
from api.db.database import Connection, affected_rows, lift_statement_timeout, refresh_statistics_after_load
from api.db.sql_queries import load_queries

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))
STAGING_TABLE = "assignment_staging"
# Bulk statements may run longer than the service-wide statement timeout.
BULK_TIMEOUT_SECONDS = 3600.0

Row = asyncpg.Record


class AssignmentRepository:
    """Reads and writes assignments; callers own the transaction."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    async def insert(self, experiment_id: UUID, units: Sequence[str], masks: Sequence[int], channels: int) -> int:
        """Store units not yet assigned; returns the (unit, channel) rows inserted."""
        status = await self.connection.execute(QUERIES["insert_assignments"], experiment_id, units, masks, channels)
        return affected_rows(status)

    async def select_units(self, experiment_id: UUID, units: Sequence[str]) -> list[Row]:
        rows: list[Row] = await self.connection.fetch(QUERIES["select_units"], experiment_id, units)
        return rows

    async def select_unit_with_design(self, experiment_id: UUID, unit: str) -> Row | None:
        """The experiment (kind, status, salt, channels) and the unit's stored arms, in one round trip."""
        row: Row | None = await self.connection.fetchrow(
            QUERIES["select_unit_with_design"], experiment_id, unit, workspace_filter()
        )
        return row

    async def begin_bulk(self) -> datetime:
        """Lift the statement timeout for this transaction's bulk statements; returns its timestamp."""
        await lift_statement_timeout(self.connection)
        now: datetime = await self.connection.fetchval(QUERIES["transaction_timestamp"])
        return now

    async def copy_text(self, pieces: list[bytes]) -> int:
        """COPY complete assignment rows, in COPY's text format (in pieces), straight into ``assignments``
        (fails on any existing key)."""

        async def source() -> AsyncIterator[bytes]:
            for piece in pieces:
                yield piece

        status = await copy_until_lost(
            self.connection,
            self.connection.copy_to_table(
                "assignments",
                source=source(),
                columns=("experiment_id", "unit", "position", "arm", "assigned_at"),
                format="text",
                timeout=BULK_TIMEOUT_SECONDS,
            ),
        )
        return affected_rows(status)

    async def create_staging(self) -> None:
        """A temporary table of (unit, holdout mask), dropped at commit."""
        await self.connection.execute(QUERIES["create_staging"])

    async def stage(self, records: Iterable[tuple[str, int]]) -> None:
        """Replace the staging table's content with these (unit, holdout mask) records."""
        await self.connection.execute(QUERIES["truncate_staging"])
        await copy_until_lost(
            self.connection,
            self.connection.copy_records_to_table(
                STAGING_TABLE, records=records, columns=("unit", "mask"), timeout=BULK_TIMEOUT_SECONDS
            ),
        )

    async def insert_staged(self, experiment_id: UUID, channels: int) -> int:
        """Move the staged units into ``assignments``, skipping those already there."""
        status = await self.connection.execute(
            QUERIES["insert_from_staging"], experiment_id, channels, timeout=BULK_TIMEOUT_SECONDS
        )
        return affected_rows(status)

    @staticmethod
    async def refresh_statistics(pool: asyncpg.Pool, rows_written: int) -> None:
        """After a load has committed: ``VACUUM ANALYZE assignments`` when it wrote a tenth of the table or more
        (:func:`api.db.database.refresh_statistics`)."""
        await refresh_statistics_after_load(
            pool, QUERIES["statistics_outdated"], QUERIES["vacuum_assignments"], rows_written
        )

    async def counts(self, experiment_id: UUID) -> list[Row]:
        rows: list[Row] = await self.connection.fetch(QUERIES["count_by_channel_and_arm"], experiment_id)
        return rows

    async def page(self, experiment_id: UUID, after: str | None, limit: int) -> list[Row]:
        rows: list[Row] = await self.connection.fetch(QUERIES["list_page"], experiment_id, after, limit)
        return rows

    async def iterate(self, experiment_id: UUID, prefetch: int = 10_000) -> AsyncIterator[Row]:
        """Every stored unit in order, through a server-side cursor (inside a transaction)."""
        async for row in self.connection.cursor(QUERIES["list_all"], experiment_id, prefetch=prefetch):
            yield row
