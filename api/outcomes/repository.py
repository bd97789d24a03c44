"""Unit-level outcomes and channel spend in PostgreSQL: the statements in ``queries.sql``, run with asyncpg."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from uuid import UUID

import asyncpg

from api.db.bulk_copy import copy_until_lost
from api.db.database import Connection, affected_rows, lift_statement_timeout, refresh_statistics_after_load
from api.db.sql_queries import load_queries

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))
STAGING_TABLE = "outcome_staging"
STAGING_COLUMNS = ("line", "unit", "value", "covariate")
# Bulk statements may run longer than the service-wide statement timeout.
BULK_TIMEOUT_SECONDS = 3600.0

Row = asyncpg.Record
StagedRow = tuple[int, str, float, float | None]  # (line or index, unit, value, covariate)


class OutcomeRepository:
    """Reads and writes an experiment's outcomes and spend; callers own the transaction.

    An upload is staged first (:meth:`create_staging`, :meth:`stage`), checked in SQL, then upserted
    (:meth:`upsert_staged`); the staging table is dropped at commit.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    async def create_staging(self) -> None:
        """The transaction's staging table, with the statement timeout lifted for the bulk statements."""
        await lift_statement_timeout(self.connection)
        await self.connection.execute(QUERIES["create_staging"])

    async def stage(self, rows: Iterable[StagedRow]) -> int:
        """``COPY`` parsed rows into the staging table; returns how many."""
        status = await copy_until_lost(
            self.connection,
            self.connection.copy_records_to_table(
                STAGING_TABLE, records=rows, columns=STAGING_COLUMNS, timeout=BULK_TIMEOUT_SECONDS
            ),
        )
        return affected_rows(status)

    async def first_repeat(self) -> Row | None:
        """The first unit staged twice (``unit``, ``first_line``, ``last_line``), if any."""
        await self.connection.execute(QUERIES["analyze_staging"], timeout=BULK_TIMEOUT_SECONDS)
        row: Row | None = await self.connection.fetchrow(QUERIES["first_repeat"], timeout=BULK_TIMEOUT_SECONDS)
        return row

    async def unassigned(self, experiment_id: UUID, examples: int) -> Row:
        """How many staged units were never assigned (``units``) and the first ``examples`` of them."""
        await self.connection.execute(QUERIES["plan_joins_without_nested_loops"])
        row: Row | None = await self.connection.fetchrow(
            QUERIES["unassigned"], experiment_id, examples, timeout=BULK_TIMEOUT_SECONDS
        )
        assert row is not None  # an aggregate always returns one row
        return row

    async def upsert_staged(self, experiment_id: UUID) -> Row:
        """Store every staged outcome, replacing a unit's earlier one; counts ``inserted`` and ``replaced``."""
        row: Row | None = await self.connection.fetchrow(
            QUERIES["upsert_outcomes"], experiment_id, timeout=BULK_TIMEOUT_SECONDS
        )
        assert row is not None  # an aggregate always returns one row
        return row

    @staticmethod
    async def refresh_statistics(pool: asyncpg.Pool, rows_written: int) -> None:
        """After a load has committed: ``VACUUM ANALYZE holdout_outcomes`` when it wrote a tenth of the table or more
        (:func:`api.db.database.refresh_statistics`)."""
        await refresh_statistics_after_load(
            pool, QUERIES["statistics_outdated"], QUERIES["vacuum_outcomes"], rows_written
        )

    async def upsert_spend(
        self,
        experiment_id: UUID,
        positions: Sequence[int],
        spends: Sequence[float],
        values_per_conversion: Sequence[float | None],
    ) -> None:
        """Set the spend (and value per conversion) of the channels at ``positions``."""
        await self.connection.execute(QUERIES["upsert_spend"], experiment_id, positions, spends, values_per_conversion)
