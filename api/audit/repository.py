"""Audit events in PostgreSQL: the statements in ``queries.sql``, run with asyncpg."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from api.auth.caller import acting_workspace, workspace_filter
from api.db.database import Connection
from api.db.sql_queries import load_queries

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))


class AuditRepository:
    """Appends and reads audit events; callers own the transaction. There is no update and no delete."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    async def insert(
        self,
        *,
        subject_kind: str,
        subject_id: UUID,
        action: str,
        key_id: UUID | None,
        key_name: str | None,
        details: dict[str, Any],
    ) -> None:
        await self.connection.execute(
            QUERIES["insert_event"], subject_kind, subject_id, action, key_id, key_name, details, acting_workspace()
        )

    async def list(self, subject_kind: str, subject_id: UUID, after_id: int, limit: int) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self.connection.fetch(
            QUERIES["list_events"], subject_kind, subject_id, after_id, limit, workspace_filter()
        )
        return rows

    async def subject_exists(self, subject_kind: str, subject_id: UUID) -> bool:
        """Whether the experiment or geo dataset (``subject_kind``) exists now, in the request's workspace."""
        query = QUERIES["experiment_exists"] if subject_kind == "experiment" else QUERIES["geo_dataset_exists"]
        return bool(await self.connection.fetchval(query, subject_id, workspace_filter()))
