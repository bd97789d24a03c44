"""Fixtures shared by every test: a throwaway database on a real PostgreSQL server.

With ``DATABASE_URL`` set, the tests create a database of their own on that server and drop it at the
end; without it, they start the embedded PostgreSQL the service itself falls back to.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import asyncpg
import httpx
import pytest
import uvicorn
from hypothesis import settings as hypothesis_settings
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.auth.keys import Scope
from api.db.embedded import start_embedded_postgres, stop_embedded_postgres
from api.http.limits import limited_http_protocol, uvicorn_options
from api.jobs.worker import run_worker
from api.settings import Settings, settings_from_environment
from testkit.database import create_database, drop_database, make_key
from testkit.service import free_port

DATA_DIR = Path(__file__).parent / "data"

# Property tests are reproducible in CI and tolerant of a loaded 2-core machine.
hypothesis_settings.register_profile("counterfact", derandomize=True, deadline=None, print_blob=True)
hypothesis_settings.load_profile("counterfact")

# The embedded server logs its shutdown from an atexit hook, after pytest has closed its streams.
logging.getLogger("embedded_postgres").addHandler(logging.NullHandler())
logging.getLogger("embedded_postgres").propagate = False


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A real PostgreSQL server: ``DATABASE_URL``'s, or an embedded one.

    The embedded server's cluster is not under pytest's temporary directory: run as root, the server runs
    as an unprivileged user, and every pytest session that starts on the machine makes
    ``/tmp/pytest-of-root`` private again (0700), which crashed a server living below it (PANIC: could
    not open pg_control) in the middle of another session's tests."""
    configured = os.environ.get("DATABASE_URL")
    if configured:
        yield configured
        return
    data_dir = Path(tempfile.mkdtemp(prefix="counterfact-tests-"))
    try:
        yield start_embedded_postgres(data_dir)
    finally:
        stop_embedded_postgres(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A fresh database for this test session, dropped afterwards."""
    url = asyncio.run(create_database(server_url, "counterfact_test"))
    try:
        yield url
    finally:
        asyncio.run(drop_database(server_url, url))


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return replace(
        settings_from_environment(),
        database_url=database_url,
        data_dir=tmp_path_factory.mktemp("data"),
        pool_min_size=1,
        pool_max_size=4,
        log_level="WARNING",
        auth_failures_per_minute=0,  # the contract tests send many keyless requests to one live server
    )


@pytest.fixture
def app(settings: Settings) -> Litestar:
    """The app the tests call. A computation answers within the request for up to 5 minutes (not 2 s), so a
    test that expects an answer gets it on a busy machine too; tests of jobs ask ``Prefer: respond-async``."""
    return create_app(replace(settings, job_after_seconds=300.0))


@contextmanager
def app_in_thread(app: Litestar, settings: Settings) -> Iterator[str]:
    """``app`` under uvicorn in a thread on a free port, with the HTTP protocol and connection limits
    ``counterfact serve`` gives it for ``settings``; its URL once ``/health`` answers; stopped at the end."""
    port = free_port()
    options = {**uvicorn_options(settings), "http": limited_http_protocol(settings)}
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    else:
        raise RuntimeError("the live server did not start")
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server_url(settings: Settings) -> Iterator[str]:
    """A live server (uvicorn in a thread) on the test database, for tests over real HTTP or in a browser."""
    with app_in_thread(create_app(settings), settings) as url:
        yield url


async def _truncate_all(url: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        tables = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename NOT IN ('schema_migrations', 'workspaces')"
        )
        if tables:
            names = ", ".join(f'"{t["tablename"]}"' for t in tables)
            await connection.execute(f"TRUNCATE {names} CASCADE")
        await connection.execute("DELETE FROM workspaces WHERE name <> 'default'")  # the migration's row stays
    finally:
        await connection.close()


@pytest.fixture
async def client(app: Litestar, database_url: str) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """An HTTP client on the app, with its lifespan (pool, migrations) running, on empty tables.

    It sends an admin key on every request; tests of authentication remove or replace the header.
    """
    async with AsyncTestClient(app=app) as test_client:
        await _truncate_all(database_url)
        test_client.headers["Authorization"] = f"Bearer {await make_key(database_url, Scope.ADMIN)}"
        yield test_client


@pytest.fixture
async def worker(client: AsyncTestClient[Litestar], settings: Settings) -> AsyncIterator[None]:
    """A ``counterfact worker`` running in the test's event loop (service tasks and the toy ones)."""
    from tests.api.toy_tasks import toy_registry

    stop = asyncio.Event()
    running = asyncio.create_task(
        run_worker(replace(settings, job_heartbeat_timeout_seconds=5.0), toy_registry(), stop)
    )
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(running, timeout=60)


class LogCollector(logging.Handler):
    """Keeps every log record it is handed, for tests that check what was logged."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
