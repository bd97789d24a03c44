"""Idempotent requests in PostgreSQL: the statements in ``queries.sql``, run with asyncpg."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import asyncpg

from api.auth.caller import acting_workspace
from api.db.database import Connection
from api.db.sql_queries import load_queries

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))
RETENTION_SECONDS = 24 * 3600
KEY_REUSED_REASON = "was already used for another request: a key must come with the same method, path, query and body"


@dataclass(frozen=True)
class StoredResponse:
    """The first answer to a key: replayed to a retry whose body has the same hash."""

    request_hash: bytes
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def location(self) -> str | None:
        """The ``Location`` header: the path of what the first request created (a dataset, a job)."""
        return next((value for name, value in self.headers if name.lower() == "location"), None)


@dataclass(frozen=True)
class InProgress:
    """The first request with the key has not finished."""


class IdempotencyRepository:
    """Claims keys, stores first answers and reads them back; each call is its own transaction."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def claim(self, caller: bytes, key: str, operation: str, path: str) -> StoredResponse | InProgress | None:
        """``None`` when this request is the first with ``key`` (it now owns it); else what the first left."""
        async with self.pool.acquire() as connection, connection.transaction():
            await connection.execute(QUERIES["forget_expired"], float(RETENTION_SECONDS), caller, key)
            if await connection.fetchval(QUERIES["claim"], caller, key, operation, path) is not None:
                return None
            row = await connection.fetchrow(QUERIES["select"], caller, key)
        if row is None or row["status"] is None:
            return InProgress()
        return StoredResponse(
            request_hash=bytes(row["request_hash"]),
            status=row["status"],
            headers=[(name, value) for name, value in row["headers"]],
            body=bytes(row["body"]),
        )

    async def names_an_experiment(self, caller: UUID, key: str) -> bool:
        """Whether ``caller`` used ``key`` to create an experiment (then it names that request only)."""
        async with self.pool.acquire() as connection:
            return await key_names_an_experiment(connection, caller, key)

    async def complete(self, caller: bytes, key: str, response: StoredResponse) -> None:
        async with self.pool.acquire() as connection:
            await connection.execute(
                QUERIES["complete"],
                caller,
                key,
                response.request_hash,
                response.status,
                [list(header) for header in response.headers],
                response.body,
                response.location,
            )

    async def release(self, caller: bytes, key: str) -> None:
        async with self.pool.acquire() as connection:
            await connection.execute(QUERIES["release"], caller, key)


async def forget_replies_about(connection: Connection, path: str) -> None:
    """Delete every stored reply about the resource at ``path`` (``/v1/geo/datasets/<id>``), in the caller's
    transaction: the one that created it and those of requests under it."""
    await connection.execute(QUERIES["forget_replies_about"], path)


async def forget_design_job_replies(connection: Connection, dataset_id: UUID) -> None:
    """Delete the stored replies of the design jobs made on ``dataset_id`` (before the jobs are deleted)."""
    await connection.execute(QUERIES["forget_design_job_replies"], dataset_id)


def caller_in_workspace(caller: UUID) -> bytes:
    """The ``caller`` of this table: the API key's id and the request's workspace, so that an all-workspaces
    key's key in one workspace never replays (nor blocks) its request in another."""
    return caller.bytes + acting_workspace().encode()


async def key_names_an_experiment(connection: Connection, caller: UUID | None, key: str) -> bool:
    """Whether ``caller`` created an experiment with ``key`` in the request's workspace (the experiments' own
    idempotency mechanism)."""
    return bool(await connection.fetchval(QUERIES["key_names_an_experiment"], caller, key, acting_workspace()))


async def key_names_a_stored_request(connection: Connection, caller: UUID | None, key: str) -> bool:
    """Whether ``caller`` holds ``key`` for a request of this table (an upload, a design, ...)."""
    if caller is None:
        return False
    return bool(await connection.fetchval(QUERIES["key_names_a_stored_request"], caller_in_workspace(caller), key))
