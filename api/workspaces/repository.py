"""Workspaces in PostgreSQL: the statements in ``queries.sql``, run with asyncpg."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg

from api.db.database import Connection
from api.db.sql_queries import load_queries

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # the CHECK of sql/0023_workspaces.sql


@dataclass(frozen=True)
class Workspace:
    name: str
    created_at: datetime


def _workspace(row: asyncpg.Record) -> Workspace:
    return Workspace(name=row["name"], created_at=row["created_at"])


class WorkspaceRepository:
    """Reads and writes workspaces; callers own the transaction."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    async def insert(self, name: str) -> Workspace | None:
        """The new workspace ``name``; ``None`` when one has that name already."""
        row = await self.connection.fetchrow(QUERIES["insert_workspace"], name)
        return None if row is None else _workspace(row)

    async def find(self, name: str) -> Workspace | None:
        row = await self.connection.fetchrow(QUERIES["select_workspace"], name)
        return None if row is None else _workspace(row)

    async def list(self) -> list[Workspace]:
        return [_workspace(row) for row in await self.connection.fetch(QUERIES["list_workspaces"])]


async def create_workspace(connection: Connection, name: str) -> Workspace:
    """Make the workspace ``name``; ``ValueError`` when the name is not usable or taken."""
    if NAME_PATTERN.fullmatch(name) is None:
        raise ValueError(
            f"{name!r} is not a workspace name: 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    made = await WorkspaceRepository(connection).insert(name)
    if made is None:
        raise ValueError(f"a workspace named {name!r} exists already")
    return made
