"""What the benchmarks share: a throwaway database on ``DATABASE_URL``'s server and the service on it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent


def with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + database))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def admin(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def server(
    database_url: str,
    port: int,
    *,
    serve: bool = False,
    extra_env: dict[str, str] | None = None,
    log: Path | None = None,
    started: Callable[[subprocess.Popen[bytes]], None] | None = None,
) -> Iterator[str]:
    """The service on ``database_url`` and ``port`` until the block ends: uvicorn alone, or with ``serve``
        ``counterfact serve`` (uvicorn and one job worker, as ``make serve``); SIGTERM at the end, which drains
        the requests in flight and hands the worker's jobs back. Its log lines go to ``log`` (else nowhere); ``started``
    is handed its process once it answers."""
    env = {**os.environ, "DATABASE_URL": database_url, "COUNTERFACT_LOG_LEVEL": "WARNING", **(extra_env or {})}
    uvicorn = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--no-access-log"]
    command = [sys.executable, "-m", "api.cli", "serve"] if serve else uvicorn
    log_file = open(log, "ab") if log is not None else None  # noqa: SIM115 (closed in the finally below)
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL if log_file is None else log_file,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the server did not start")
            time.sleep(0.2)
        if started is not None:
            started(process)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=60)
        if log_file is not None:
            log_file.close()


def admin_headers(database_url: str) -> dict[str, str]:
    """An ``Authorization`` header with a fresh admin key on ``database_url`` (``counterfact keys create``)."""
    return key_headers(database_url, "admin")


def key_headers(database_url: str, scope: str) -> dict[str, str]:
    """An ``Authorization`` header with a fresh key of ``scope`` on ``database_url``."""
    created = subprocess.run(
        [sys.executable, "-m", "api.cli", "keys", "create", "--name", "bench", "--scopes", scope],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url, "COUNTERFACT_LOG_LEVEL": "WARNING"},
        check=True,
        capture_output=True,
        text=True,
    )
    return {"Authorization": f"Bearer {created.stdout.strip()}"}
