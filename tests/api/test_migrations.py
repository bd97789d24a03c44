"""Migrations: applied in order, once each, recorded, and safe when two replicas start together."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import pytest

from api.db.database import apply_migrations, load_migrations
from testkit.database import with_database


async def _fresh_database(server_url: str) -> str:
    name = f"counterfact_migrations_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return name


async def _drop(server_url: str, name: str) -> None:
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def test_migration_files_are_numbered_in_order_without_gaps() -> None:
    versions = [m.version for m in load_migrations()]
    assert versions == list(range(1, len(versions) + 1))


async def test_each_migration_is_applied_once_and_recorded(server_url: str) -> None:
    name = await _fresh_database(server_url)
    try:
        connection = await asyncpg.connect(with_database(server_url, name))
        try:
            first = await apply_migrations(connection, load_migrations())
            second = await apply_migrations(connection, load_migrations())
            recorded = await connection.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
        finally:
            await connection.close()
        assert first == [m.name for m in load_migrations()]
        assert second == []
        assert [r["name"] for r in recorded] == first
    finally:
        await _drop(server_url, name)


async def test_two_replicas_migrating_at_once_apply_each_migration_exactly_once(server_url: str) -> None:
    name = await _fresh_database(server_url)
    try:
        url = with_database(server_url, name)
        connections = [await asyncpg.connect(url) for _ in range(2)]
        try:
            results = await asyncio.gather(*(apply_migrations(c, load_migrations()) for c in connections))
        finally:
            for connection in connections:
                await connection.close()
        applied = sorted(results, key=len)
        assert applied[0] == []
        assert applied[1] == [m.name for m in load_migrations()]
    finally:
        await _drop(server_url, name)


async def test_a_failing_migration_leaves_nothing_behind(server_url: str, tmp_path: Path) -> None:
    (tmp_path / "0001_good.sql").write_text("CREATE TABLE good (id int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE half (id int); SELECT no_such_function();")
    name = await _fresh_database(server_url)
    try:
        connection = await asyncpg.connect(with_database(server_url, name))
        try:
            with pytest.raises(asyncpg.PostgresError):
                await apply_migrations(connection, load_migrations(tmp_path))
            tables = {r["tablename"] for r in await connection.fetch("SELECT tablename FROM pg_tables")}
            versions = [r["version"] for r in await connection.fetch("SELECT version FROM schema_migrations")]
        finally:
            await connection.close()
        assert "good" in tables
        assert "half" not in tables
        assert versions == [1]
    finally:
        await _drop(server_url, name)
