"""API keys in PostgreSQL: the statements in ``queries.sql``, run with asyncpg."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from uuid import UUID

import asyncpg

from api.auth.keys import ApiKey, Scope
from api.db.database import Connection
from api.db.sql_queries import load_queries

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))


def _api_key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        id=row["id"],
        name=row["name"],
        scope=Scope(row["scope"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        workspace=row["workspace"],
    )


class ApiKeyRepository:
    """Reads and writes API keys; callers own the transaction."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    async def insert(
        self,
        *,
        key_id: UUID,
        name: str,
        key_hash: bytes,
        scope: Scope,
        expires_at: datetime | None,
        workspace: str | None,
    ) -> ApiKey:
        """Store a key working in ``workspace`` (``None``: every workspace, for an admin key)."""
        row = await self.connection.fetchrow(
            QUERIES["insert_key"], key_id, name, key_hash, scope.value, expires_at, workspace
        )
        assert row is not None
        return _api_key(row)

    async def find_by_hash(self, key_hash: bytes) -> tuple[ApiKey, bytes] | None:
        """The key stored under ``key_hash`` and the stored digest (to compare in constant time)."""
        row = await self.connection.fetchrow(QUERIES["select_key_by_hash"], key_hash)
        if row is None:
            return None
        return _api_key(row), bytes(row["key_hash"])

    async def list(self) -> list[ApiKey]:
        return [_api_key(row) for row in await self.connection.fetch(QUERIES["list_keys"])]

    async def revoke(self, key_id: UUID) -> ApiKey | None:
        row = await self.connection.fetchrow(QUERIES["revoke_key"], key_id)
        return None if row is None else _api_key(row)

    async def claim_marker(self, name: str) -> bool:
        """Set the one-time marker ``name``; ``True`` only for the caller that set it first."""
        return await self.connection.fetchval(QUERIES["claim_marker"], name) is not None
