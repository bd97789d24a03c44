"""Migrations 0018 and 0020 on experiments that existed before them: their dates come from the status
changes they had, and their assignment rule stays the BLAKE2b rule their units were assigned with."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date

import asyncpg
import pytest

from api.db.database import apply_migrations, load_migrations
from testkit.database import with_database
from tests.api.test_migrations import _drop, _fresh_database

INSERT = (
    "INSERT INTO experiments (id, kind, name, status, design, salt, started_at, stopped_at) "
    "VALUES ($1, $2, $3, $4, '{}'::jsonb, $5, $6::text::timestamptz, $7::text::timestamptz)"
)


@pytest.fixture
async def migrated(server_url: str) -> AsyncIterator[tuple[asyncpg.Connection, dict[str, uuid.UUID]]]:
    """A database migrated to just before 0018, with experiments in it, then migrated to the end."""
    name = await _fresh_database(server_url)
    connection = await asyncpg.connect(with_database(server_url, name))
    try:
        migrations = load_migrations()
        await apply_migrations(connection, [m for m in migrations if m.version < 18])
        ids = {label: uuid.uuid4() for label in ("stopped", "running", "draft", "geo")}
        await connection.execute(
            INSERT, ids["stopped"], "holdout", "old", "stopped", "s1", "2026-03-01T23:30-02:00", "2026-03-14T09:00Z"
        )
        await connection.execute(INSERT, ids["running"], "holdout", "on", "running", "s2", "2026-04-01T09:00Z", None)
        await connection.execute(INSERT, ids["draft"], "holdout", "new", "draft", "s3", None, None)
        await connection.execute(INSERT, ids["geo"], "geo", "tv", "draft", None, None, None)
        await apply_migrations(connection, migrations)
        yield connection, ids
    finally:
        await connection.close()
        await _drop(server_url, name)


async def test_existing_holdout_tests_take_their_actual_dates_from_their_status_times_in_utc(
    migrated: tuple[asyncpg.Connection, dict[str, uuid.UUID]],
) -> None:
    connection, ids = migrated
    rows = {
        r["id"]: (r["actual_start"], r["actual_end"])
        for r in await connection.fetch("SELECT id, actual_start, actual_end FROM experiments")
    }
    assert rows[ids["stopped"]] == (date(2026, 3, 2), date(2026, 3, 14))  # 23:30 at UTC-2 is the 2nd in UTC
    assert rows[ids["running"]] == (date(2026, 4, 1), None)
    assert rows[ids["draft"]] == (None, None)


async def test_existing_holdout_experiments_keep_the_blake2b_rule_and_geo_ones_have_none(
    migrated: tuple[asyncpg.Connection, dict[str, uuid.UUID]],
) -> None:
    connection, ids = migrated
    rows = await connection.fetch("SELECT id, assignment_rule FROM experiments")
    rules = {r["id"]: r["assignment_rule"] for r in rows}
    assert rules == {ids["stopped"]: "blake2b", ids["running"]: "blake2b", ids["draft"]: "blake2b", ids["geo"]: None}
