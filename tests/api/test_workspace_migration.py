"""Migration 0023 on a database with data made before it: every experiment, geo dataset, job, audit event
and API key moves to the workspace `default`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from api.db.database import apply_migrations, load_migrations
from testkit.database import with_database
from tests.api.test_migrations import _drop, _fresh_database

OWNED = ("experiments", "geo_datasets", "jobs", "audit_events", "api_keys")


@pytest.fixture
async def migrated(server_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A database migrated to just before 0023, with one row in each owned table, then migrated to the end."""
    name = await _fresh_database(server_url)
    connection = await asyncpg.connect(with_database(server_url, name))
    try:
        migrations = load_migrations()
        await apply_migrations(connection, [m for m in migrations if m.version < 23])
        await connection.execute(
            "INSERT INTO experiments (id, kind, name, status, design) VALUES ($1, 'holdout', 'old', 'draft', '{}')",
            uuid.uuid4(),
        )
        await connection.execute(
            "INSERT INTO geo_datasets (id, name, geo_count, date_count, row_count, first_date, last_date, has_spend,"
            " geos, quality) VALUES ($1, 'old', 2, 1, 2, '2026-01-01', '2026-01-01', false, '{a,b}', '{}')",
            uuid.uuid4(),
        )
        await connection.execute(
            "INSERT INTO jobs (id, kind, subject, status, payload) VALUES ($1, 'geo_power', '/v1/geo/power',"
            " 'queued', ''::bytea)",
            uuid.uuid4(),
        )
        await connection.execute(
            "INSERT INTO audit_events (subject_kind, subject_id, action) VALUES ('experiment', $1, 'created')",
            uuid.uuid4(),
        )
        await connection.execute(
            "INSERT INTO api_keys (id, name, key_hash, scope) VALUES ($1, 'old', $2, 'admin')",
            uuid.uuid4(),
            bytes(32),
        )
        await apply_migrations(connection, migrations)
        yield connection
    finally:
        await connection.close()
        await _drop(server_url, name)


@pytest.mark.parametrize("table", OWNED)
async def test_existing_rows_move_to_the_default_workspace(migrated: asyncpg.Connection, table: str) -> None:
    assert await migrated.fetchval(f"SELECT array_agg(workspace) FROM {table}") == ["default"]


async def test_every_insert_names_its_workspace_once_migrated(migrated: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.NotNullViolationError):
        await migrated.execute(
            "INSERT INTO experiments (id, kind, name, status, design) VALUES ($1, 'holdout', 'new', 'draft', '{}')",
            uuid.uuid4(),
        )


async def test_only_an_admin_key_may_work_in_every_workspace(migrated: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.CheckViolationError):
        await migrated.execute(
            "INSERT INTO api_keys (id, name, key_hash, scope, workspace) VALUES ($1, 'x', $2, 'write', NULL)",
            uuid.uuid4(),
            bytes(range(32)),
        )
