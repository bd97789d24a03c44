"""The service as a real process (uvicorn running the app, as ``make serve`` does) for tests that signal
or kill it; and the queries that watch its database connections from outside."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import asyncpg

from testkit.service import ROOT, free_port, wait_for_health

# The service's connections (the pool names itself), other than the one asking.
SERVICE_BACKENDS = (
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
    "AND application_name = 'counterfact' AND pid <> pg_backend_pid()"
)


@dataclass(frozen=True)
class ServiceProcess:
    process: subprocess.Popen[bytes]
    url: str


@contextmanager
def service_process(database_url: str) -> Iterator[ServiceProcess]:
    """Start ``uvicorn api.app:create_app`` on a free port and wait until ``/health`` answers; on exit,
    SIGKILL it if it still runs."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "COUNTERFACT_LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--log-level", "warning"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, process)
        yield ServiceProcess(process, url)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


async def wait_for_service_backend(connection: asyncpg.Connection, condition: str, seconds: float = 60.0) -> int:
    """The pid of a service connection meeting ``condition`` (SQL on ``pg_stat_activity``), once there is one."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pid = await connection.fetchval(f"{SERVICE_BACKENDS} AND {condition} LIMIT 1")
        if pid is not None:
            return int(pid)
        await asyncio.sleep(0.01)
    raise AssertionError(f"no service connection with {condition} within {seconds} s")
