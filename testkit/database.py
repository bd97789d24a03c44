"""Throwaway databases on a PostgreSQL server, and the keys made in them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from api.auth.keys import Scope
from api.auth.service import create_key


def with_database(url: str, database: str) -> str:
    """``url`` pointing at another database on the same server."""
    return urlunsplit(urlsplit(url)._replace(path="/" + database))


async def execute(url: str, statement: str) -> None:
    """Run one ``statement`` on its own connection to ``url`` (``CREATE DATABASE`` cannot run in a pool)."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def create_database(server_url: str, prefix: str) -> str:
    """The URL of a new, empty database ``<prefix>_<12 hex digits>`` on ``server_url``'s server."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    await execute(server_url, f'CREATE DATABASE "{name}"')
    return with_database(server_url, name)


async def drop_database(server_url: str, url: str) -> None:
    """Drop ``url``'s database, connected to ``server_url`` (``WITH (FORCE)``: connections left open do not
    keep it)."""
    name = urlsplit(url).path.lstrip("/")
    await execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def throwaway_database(server_url: str, prefix: str) -> AsyncIterator[str]:
    """The URL of a new database on ``server_url``'s server (``create_database``), dropped at the end."""
    url = await create_database(server_url, prefix)
    try:
        yield url
    finally:
        await drop_database(server_url, url)


async def make_key(url: str, scope: Scope, name: str = "tests") -> str:
    """A new API key with ``scope`` in the database at ``url``; the secret is returned."""
    connection = await asyncpg.connect(url)
    try:
        return (await create_key(connection, name=name, scope=scope)).secret
    finally:
        await connection.close()
