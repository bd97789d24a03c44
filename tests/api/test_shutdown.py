"""Graceful shutdown of the API process: SIGTERM stops it taking connections, lets the requests in flight
finish (here a streamed CSV upload, half of it still to be sent when the signal arrives), then it exits.

(Workers on SIGTERM hand their jobs back to the queue: ``tests/api/test_jobs.py``.)
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator

import asyncpg
import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.api.service_process import service_process, wait_for_service_backend

Client = AsyncTestClient[Litestar]
HOLDOUT = {
    "kind": "holdout",
    "name": "shutdown",
    "metric": {"kind": "proportion"},
    "channels": [{"name": "meta", "holdout_fraction": 0.1}, {"name": "search", "holdout_fraction": 0.2}],
}


def units(start: int, stop: int) -> bytes:
    return b"".join(b"u%d\n" % i for i in range(start, stop))


async def _refused_new_connections(url: str) -> bool:
    """Whether the service stops accepting connections (within 10 s).

    A connection the kernel had already queued when the listener closed is reset rather than refused, so a
    read or protocol error counts as refused too."""
    async with httpx.AsyncClient(base_url=url, timeout=1) as fresh:
        for _ in range(100):
            try:
                await fresh.get("/health")
            except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
                return True
            await asyncio.sleep(0.1)
    return False


async def test_sigterm_lets_an_upload_in_flight_finish_then_the_service_exits(
    client: Client, database_url: str
) -> None:
    experiment_id = (await client.post("/v1/experiments", json=HOLDOUT)).json()["id"]
    signalled = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield b"unit\n" + units(0, 60_000)
        await signalled.wait()
        yield units(60_000, 120_000)

    headers = {"Authorization": client.headers["Authorization"], "Content-Type": "text/csv"}
    watcher = await asyncpg.connect(database_url)
    try:
        with service_process(database_url) as service:
            async with httpx.AsyncClient(base_url=service.url, headers=headers, timeout=120) as http:
                upload = asyncio.create_task(http.post(f"/v1/experiments/{experiment_id}/assignments", content=body()))
                await wait_for_service_backend(watcher, "backend_xid IS NOT NULL")  # its transaction is open
                service.process.send_signal(signal.SIGTERM)
                refused = await _refused_new_connections(service.url)
                signalled.set()  # the rest of the body comes while the service shuts down
                response = await upload
            # uvicorn re-raises the signal once it has shut down: the process ends as SIGTERM's default would.
            assert service.process.wait(timeout=60) in (0, -signal.SIGTERM)
        stored = await watcher.fetchval("SELECT count(*) FROM assignments WHERE experiment_id = $1", experiment_id)
    finally:
        await watcher.close()
    assert refused
    assert response.status_code == 200, response.text
    assert response.json()["units_received"] == 120_000
    assert stored == 2 * 120_000
