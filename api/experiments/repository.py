"""Experiments in PostgreSQL: the statements in ``queries.sql``, run with asyncpg."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from api.auth.caller import acting_workspace, adopt_workspace, workspace_filter
from api.db.database import Connection
from api.db.sql_queries import load_queries

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))

Row = asyncpg.Record


class ExperimentRepository:
    """Reads and writes experiments; callers own the transaction."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    async def insert(
        self,
        *,
        experiment_id: UUID,
        kind: str,
        name: str,
        design: dict[str, Any],
        salt: str | None,
        idempotency_key: str | None,
        request_hash: str,
        created_by: UUID | None,
        assignment_rule: str | None = None,
        actual: tuple[date, date | None] | None = None,
    ) -> Row | None:
        """Insert a draft; ``None`` when ``created_by`` has used the idempotency key already."""
        row: Row | None = await self.connection.fetchrow(
            QUERIES["insert_experiment"],
            experiment_id,
            kind,
            name,
            design,
            salt,
            idempotency_key,
            request_hash,
            created_by,
            assignment_rule,
            None if actual is None else actual[0],
            None if actual is None else actual[1],
            acting_workspace(),
        )
        return row

    async def channels(self, experiment_id: UUID) -> list[Row]:
        """The experiment's channels (``position``, ``name``, ``holdout_fraction``) by position."""
        rows: list[Row] = await self.connection.fetch(QUERIES["select_channels"], experiment_id)
        return rows

    async def replace_channels(self, experiment_id: UUID, channels: list[tuple[str, float]]) -> None:
        await self.connection.execute(QUERIES["delete_channels"], experiment_id)
        await self.connection.execute(
            QUERIES["insert_channels"],
            experiment_id,
            list(range(len(channels))),
            [name for name, _ in channels],
            [fraction for _, fraction in channels],
        )

    async def get_by_idempotency_key(self, created_by: UUID | None, key: str) -> Row | None:
        """The experiment ``created_by`` created with the idempotency key ``key``."""
        row: Row | None = await self.connection.fetchrow(
            QUERIES["select_by_idempotency_key"], created_by, key, acting_workspace()
        )
        return row

    async def get(self, experiment_id: UUID) -> Row | None:
        """The experiment, if it is in the request's workspace (:func:`api.auth.caller.workspace_filter`)."""
        return await self._by_id("select_experiment", experiment_id)

    async def get_for_share(self, experiment_id: UUID) -> Row | None:
        """The experiment, locked against a concurrent change until the transaction ends (its data is written)."""
        return await self._by_id("select_experiment_for_share", experiment_id)

    async def get_for_update(self, experiment_id: UUID) -> Row | None:
        return await self._by_id("select_experiment_for_update", experiment_id)

    async def _by_id(self, query: str, experiment_id: UUID) -> Row | None:
        row: Row | None = await self.connection.fetchrow(QUERIES[query], experiment_id, workspace_filter())
        if row is not None:
            adopt_workspace(row["workspace"])
        return row

    async def list(
        self,
        *,
        kind: str | None,
        status: str | None,
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[Row]:
        created_at, last_id = after if after else (None, None)
        rows: list[Row] = await self.connection.fetch(
            QUERIES["list_experiments"], kind, status, created_at, last_id, limit, workspace_filter()
        )
        return rows

    async def update(
        self, experiment_id: UUID, *, name: str, status: str, design: dict[str, Any], updated_by: UUID | None
    ) -> Row:
        row: Row | None = await self.connection.fetchrow(
            QUERIES["update_experiment"], experiment_id, name, status, design, updated_by
        )
        assert row is not None, "the caller holds the row lock"
        return row

    async def update_actual_period(self, experiment_id: UUID, start: date | None, end: date | None) -> Row:
        """Store a holdout test's actual period (``None`` parts filled from its status changes)."""
        row: Row | None = await self.connection.fetchrow(QUERIES["update_actual_period"], experiment_id, start, end)
        assert row is not None, "the caller holds the row lock"
        return row

    async def has_assignments(self, experiment_id: UUID) -> bool:
        """Whether any unit was assigned already (its stored arms refer to the channels by position)."""
        found: bool = await self.connection.fetchval(QUERIES["has_assignments"], experiment_id)
        return found

    async def lock_results_data(self, experiment_id: UUID) -> None:
        """Hold, until the transaction ends, the lock that serialises the writers of the experiment's
        observations and outcomes (and its deletion)."""
        await self.connection.execute(QUERIES["lock_results_data"], experiment_id)

    async def has_observations(self, experiment_id: UUID) -> bool:
        """Whether the experiment has aggregate observations (then its results come from them)."""
        found: bool = await self.connection.fetchval(QUERIES["has_observations"], experiment_id)
        return found

    async def has_outcomes(self, experiment_id: UUID) -> bool:
        """Whether the experiment has unit-level outcomes (then its results come from them)."""
        found: bool | None = await self.connection.fetchval(QUERIES["has_outcomes"], experiment_id)
        return found is not None

    async def lock_geo_dataset_schedule(self, dataset_id: UUID) -> None:
        """Hold, until the transaction ends, the lock that serialises geo scheduling on one dataset."""
        await self.connection.execute(QUERIES["lock_geo_dataset_schedule"], dataset_id)

    async def colliding_geo_experiment(
        self, experiment_id: UUID, dataset_id: UUID, start: date, end: date, markets: Sequence[str]
    ) -> Row | None:
        """A running geo experiment on the same dataset sharing a market and overlapping test dates."""
        row: Row | None = await self.connection.fetchrow(
            QUERIES["select_colliding_geo_experiment"], experiment_id, dataset_id, start, end, list(markets)
        )
        return row
