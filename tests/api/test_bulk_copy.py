"""A COPY whose connection is lost while it waits for the socket to drain fails at once (api.db.bulk_copy).

asyncpg's COPY waits on the transport's flow control and is never woken when the connection is lost;
on the embedded server's Unix socket the buffer fills at once, so an upload whose database connection
died hung for the COPY's whole timeout. The tests hold the flow control paused (as a full socket buffer
does) so they behave the same on any server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from api.db.bulk_copy import copy_until_lost


@pytest.fixture
async def connection(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("CREATE TEMPORARY TABLE copied (n integer)")
        yield connection
    finally:
        if not connection.is_closed():
            await connection.close()


async def _terminate(database_url: str, pid: int) -> None:
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


def _records() -> list[tuple[int]]:
    return [(n,) for n in range(200_000)]  # more than one COPY buffer: the copy waits to write


async def test_a_copy_paused_by_a_full_socket_fails_at_once_when_its_connection_is_lost(
    connection: asyncpg.Connection, database_url: str
) -> None:
    connection._protocol.pause_writing()  # type: ignore[attr-defined]  # as a full socket buffer does
    copy = asyncio.ensure_future(
        copy_until_lost(connection, connection.copy_records_to_table("copied", records=_records(), timeout=3600))
    )
    await asyncio.sleep(0.2)
    assert not copy.done()
    await _terminate(database_url, connection.get_server_pid())
    with pytest.raises(asyncpg.ConnectionDoesNotExistError):
        await asyncio.wait_for(copy, timeout=30)


async def test_without_the_guard_the_same_copy_waits_past_the_loss(
    connection: asyncpg.Connection, database_url: str
) -> None:
    """The asyncpg behaviour the guard exists for: if this starts failing, asyncpg fixed it."""
    connection._protocol.pause_writing()  # type: ignore[attr-defined]
    copy = asyncio.ensure_future(connection.copy_records_to_table("copied", records=_records(), timeout=3600))
    await asyncio.sleep(0.2)
    await _terminate(database_url, connection.get_server_pid())
    for _ in range(50):  # until the client has seen the connection go
        if connection.is_closed():
            break
        await asyncio.sleep(0.1)
    assert connection.is_closed()
    await asyncio.sleep(1.0)
    assert not copy.done()
    copy.cancel()
    await asyncio.gather(copy, return_exceptions=True)


async def test_a_copy_on_a_live_connection_is_unchanged(connection: asyncpg.Connection) -> None:
    status = await copy_until_lost(connection, connection.copy_records_to_table("copied", records=_records()))
    assert status == "COPY 200000"
    assert await connection.fetchval("SELECT sum(n) FROM copied") == sum(range(200_000))
