"""The service as a process of its own on a free port, and the API keys to call it with."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (the operating system's pick)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_health(url: str, process: subprocess.Popen[bytes], seconds: float = 60.0) -> None:
    """Wait until ``url``'s ``/health`` answers 200 (RuntimeError if ``process`` ends or time runs out)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the service did not start")
        time.sleep(0.1)


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
    the requests in flight and hands the worker's jobs back. Its log lines go to ``log`` (else nowhere);
    ``started`` is handed its process once it answers."""
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
        wait_for_health(base, process)
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
