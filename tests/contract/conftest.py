"""A live server (uvicorn in a thread) on the test database, for contract tests over real HTTP."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from api.app import create_app
from api.auth.keys import Scope
from api.settings import Settings
from tests.conftest import make_key


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def live_server_url(settings: Settings) -> Iterator[str]:
    port = _free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
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
    yield url
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def admin_headers(database_url: str) -> dict[str, str]:
    """An ``Authorization`` header with a new admin key (tables may have been emptied by earlier tests)."""
    return {"Authorization": f"Bearer {asyncio.run(make_key(database_url, Scope.ADMIN))}"}
