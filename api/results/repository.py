"""What holdout results read and record in PostgreSQL: the statements in ``queries.sql``, run with asyncpg."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import asyncpg

from api.db.database import Connection
from api.db.sql_queries import load_queries

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))
# Aggregating tens of millions of outcomes may outlast the service-wide statement timeout; the request
# has become a job by then (api.jobs.answer), and the results transaction lifts the server-side limit.
AGGREGATE_TIMEOUT_SECONDS = 3600.0

Row = asyncpg.Record


class ResultsRepository:
    """Reads an experiment's stored sufficient statistics and keeps its sequential looks; callers own the
    transaction."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    async def observations(self, experiment_id: UUID) -> list[Row]:
        """Every channel with its observed arms (``arm`` NULL for a channel without any) and its spend."""
        rows: list[Row] = await self.connection.fetch(QUERIES["select_observations"], experiment_id)
        return rows

    async def channels_with_spend(self, experiment_id: UUID) -> list[Row]:
        rows: list[Row] = await self.connection.fetch(QUERIES["select_channels_with_spend"], experiment_id)
        return rows

    async def outcome_shifts(self, experiment_id: UUID) -> Row:
        """One stored value (``shift``) and covariate (``covariate_shift``) of the experiment, or NULLs."""
        row: Row | None = await self.connection.fetchrow(QUERIES["outcome_shifts"], experiment_id)
        assert row is not None  # scalar subqueries always return one row
        return row

    async def aggregate_outcomes(self, experiment_id: UUID, shift: float, covariate_shift: float) -> list[Row]:
        """Sufficient statistics per channel position and arm, about the shifts (``aggregate_outcomes``), joined
        by hash or merge whatever the tables' statistics say (``plan_joins_without_nested_loops``: the rest of
        the caller's transaction is planned so too)."""
        await self.connection.execute(QUERIES["plan_joins_without_nested_loops"])
        rows: list[Row] = await self.connection.fetch(
            QUERIES["aggregate_outcomes"], experiment_id, shift, covariate_shift, timeout=AGGREGATE_TIMEOUT_SECONDS
        )
        return rows

    async def count_outcomes(self, experiment_id: UUID) -> int:
        count: int = await self.connection.fetchval(
            QUERIES["count_outcomes"], experiment_id, timeout=AGGREGATE_TIMEOUT_SECONDS
        )
        return count

    async def mixing_variance(self, experiment_id: UUID, position: int, proposed: float) -> float:
        """The channel's stored τ²: ``proposed`` when this is the first sequential look, else the first one's."""
        await self.connection.execute(QUERIES["propose_mixing_variance"], experiment_id, position, proposed)
        stored: float = await self.connection.fetchval(QUERIES["select_mixing_variance"], experiment_id, position)
        return stored

    async def earlier_looks(
        self, experiment_id: UUID, position: int, alpha: float, mixing_variance: float
    ) -> list[Row]:
        """The channel's earlier looks (``ci_low``, ``ci_high``, ``p_value``) at this α and τ², oldest first."""
        rows: list[Row] = await self.connection.fetch(
            QUERIES["select_earlier_looks"], experiment_id, position, alpha, mixing_variance
        )
        return rows

    async def record_look(
        self,
        experiment_id: UUID,
        position: int,
        alpha: float,
        mixing_variance: float,
        estimate: float,
        ci_low: float | None,
        ci_high: float | None,
        p_value: float | None,
    ) -> None:
        await self.connection.execute(
            QUERIES["record_look"], experiment_id, position, alpha, mixing_variance, estimate, ci_low, ci_high, p_value
        )
