"""Connection pool and schema migrations on PostgreSQL (asyncpg, raw SQL)."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from api.db.embedded import start_embedded_postgres
from api.db.sql_queries import load_queries
from api.settings import Settings

logger = logging.getLogger("counterfact.database")


def migrations_directory(source_root: Path, prefix: Path) -> Path:
    """Where the numbered migrations are: ``sql/`` of the source tree (a checkout, an editable install), else
    the copy a built wheel installs under ``<prefix>/share/counterfact/sql`` (pyproject's ``data-files``)."""
    checkout = source_root / "sql"
    return checkout if checkout.is_dir() else prefix / "share" / "counterfact" / "sql"


MIGRATIONS_DIR = migrations_directory(Path(__file__).resolve().parents[2], Path(sys.prefix))
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Any fixed 64-bit key; two replicas starting together serialise on it.
MIGRATION_LOCK_KEY = 0x436F756E74657266  # "Counterf"

QUERIES = load_queries(Path(__file__).with_name("database.sql"))


# A plain connection or one borrowed from the pool: repositories accept either.
Connection = asyncpg.Connection | PoolConnectionProxy


def affected_rows(status: str) -> int:
    """The row count of a command tag such as ``INSERT 0 42`` or ``DELETE 7``."""
    return int(status.rsplit(" ", 1)[-1])


async def ping(pool: asyncpg.Pool) -> None:
    """Run ``SELECT 1``: raises when the database cannot answer."""
    await pool.fetchval(QUERIES["ping"])


async def lift_statement_timeout(connection: Connection) -> None:
    """Lift the service-wide statement timeout (:func:`create_pool`) until this transaction ends: for bulk
    loads, and for computations that have become jobs by the time they run long."""
    await connection.execute(QUERIES["lift_statement_timeout"])


async def refresh_statistics_after_load(pool: asyncpg.Pool, outdated: str, vacuum: str, rows_written: int) -> None:
    """:func:`refresh_statistics` on a connection of its own, once the load has committed (a vacuum of
    2,000,000 new assignment rows beside 1,400,000 others took 0.4 s, against 15 s or more for the load)."""
    try:
        async with pool.acquire() as connection:
            await refresh_statistics(connection, outdated, vacuum, rows_written)
    except (asyncpg.InterfaceError, OSError) as error:  # e.g. the pool closing under it
        logger.warning("statistics not refreshed after a bulk load", extra={"error": str(error)})


async def refresh_statistics(connection: Connection, outdated: str, vacuum: str, rows_written: int) -> None:
    """After a bulk load has committed (outside any transaction): run ``vacuum`` (the loaded table's
    ``VACUUM (ANALYZE, SKIP_LOCKED, INDEX_CLEANUP OFF)``) when ``outdated`` (a query of one boolean, given
    ``rows_written``) says the table's statistics no longer describe it.

    The planner's estimates for an experiment come from these statistics; until autovacuum gets to the table
    (a minute or more on a busy server) a new experiment's rows are estimated at one. The vacuum also sets the
    hint bits and visibility of the new rows, which the first read would otherwise do (index-only scans
    fetching every row from the heap); it visits only pages not all-visible yet, and leaves the indexes to
    autovacuum. The data is committed already, so a failure here (a lost connection, the statement timeout)
    is logged and left to autovacuum, never turned into an error of the load; a table another session is
    vacuuming or analysing is skipped.
    """
    try:
        if await connection.fetchval(outdated, rows_written):
            await connection.execute(vacuum)
    except (asyncpg.PostgresError, OSError) as error:
        logger.warning("statistics not refreshed after a bulk load", extra={"error": str(error)})


@asynccontextmanager
async def migration_lock(connection: Connection) -> AsyncIterator[None]:
    """Hold the session-level advisory lock on :data:`MIGRATION_LOCK_KEY`: replicas that start together
    wait for each other while one of them changes the schema."""
    await connection.execute(QUERIES["lock_migrations"], MIGRATION_LOCK_KEY)
    try:
        yield
    finally:
        await connection.execute(QUERIES["unlock_migrations"], MIGRATION_LOCK_KEY)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def resolve_database_url(settings: Settings) -> str:
    """``DATABASE_URL`` when set; otherwise start the embedded server and return its URI."""
    if settings.database_url:
        return settings.database_url
    return start_embedded_postgres(settings.data_dir)


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The numbered ``NNNN_name.sql`` files in ``directory``, in order; none is an install without its schema,
    refused rather than served on an empty database."""
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if match is None:
            raise RuntimeError(f"migration file {path.name} is not named NNNN_name.sql")
        migrations.append(Migration(int(match.group(1)), path.stem, path.read_text(encoding="utf-8")))
    if not migrations:
        raise RuntimeError(f"no migrations in {directory}: the install lacks the sql/ files")
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise RuntimeError("two migration files share a version number")
    return migrations


async def apply_migrations(connection: Connection, migrations: list[Migration]) -> list[str]:
    """Apply each migration not yet recorded, each in its own transaction, under an advisory lock.

    Returns the names applied. The session-level advisory lock makes replicas that start together wait
    for each other, so each migration runs exactly once.
    """
    applied: list[str] = []
    async with migration_lock(connection):
        await connection.execute(QUERIES["create_migrations_table"])
        done = {row["version"] for row in await connection.fetch(QUERIES["applied_migrations"])}
        for migration in migrations:
            if migration.version in done:
                continue
            async with connection.transaction():
                await connection.execute(migration.sql)
                await connection.execute(QUERIES["record_migration"], migration.version, migration.name)
            applied.append(migration.name)
            logger.info("applied migration %s", migration.name)
    return applied


def _encode_json(value: object) -> str:
    return msgspec.json.encode(value).decode()


async def _init_connection(connection: Connection) -> None:
    """jsonb columns travel as Python objects, encoded and decoded by msgspec."""
    for type_name in ("json", "jsonb"):
        await connection.set_type_codec(
            type_name, encoder=_encode_json, decoder=msgspec.json.decode, schema="pg_catalog", format="text"
        )


async def _keep_session(connection: Connection) -> None:
    """Release a connection to the pool without asyncpg's default reset query.

    asyncpg still rolls back a transaction left open before calling this. The default
    (``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``) would cost one more round trip on
    every request, and there is nothing for it to undo: the service changes session settings only with
    ``SET LOCAL``, never LISTENs, and releases its one session-level advisory lock (migrations) itself.
    """


async def create_pool(database_url: str, settings: Settings) -> asyncpg.Pool:
    """Open the pool, with a statement timeout on every connection."""
    pool = await asyncpg.create_pool(
        database_url,
        init=_init_connection,
        reset=_keep_session,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        command_timeout=settings.statement_timeout_ms / 1000 + 5,
        server_settings={
            "statement_timeout": str(settings.statement_timeout_ms),
            "application_name": "counterfact",
        },
    )
    assert pool is not None
    return pool
