"""A fault of the service process itself (issue 12, "Proof"): SIGKILL in the middle of a large streamed CSV
assignments upload, its rows already written in the request's open transaction.

The client sees the connection close (a transport error, no answer); PostgreSQL rolls the transaction back
when the dead process's connection closes, so nothing of the upload is kept and nothing stays locked; a new
service process on the same database (the orchestrator's restart) takes the same upload whole, with no
manual repair and without restarting PostgreSQL.

(SIGTERM, the graceful stop, lets the upload finish: ``tests/api/test_shutdown.py``.)
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.api.service_process import SERVICE_BACKENDS, service_process, wait_for_service_backend

Client = AsyncTestClient[Litestar]
HOLDOUT = {
    "kind": "holdout",
    "name": "killed",
    "metric": {"kind": "proportion"},
    "channels": [{"name": "meta", "holdout_fraction": 0.1}, {"name": "search", "holdout_fraction": 0.2}],
}
UNITS = 1_000_000
FIRST_PART = 500_000  # sent, and being written, when the process is killed
CHUNK = 100_000
# A service connection whose transaction has written into ``assignments`` (COPY holds this lock to its end).
WRITING_ASSIGNMENTS = (
    "pid IN (SELECT pid FROM pg_locks WHERE relation = 'assignments'::regclass AND mode = 'RowExclusiveLock')"
)
WAIT = 60.0  # seconds, for every wait below: a failure fails, it does not hang
UPLOAD_WAIT = 300.0  # the whole 1,000,000-unit upload, on a loaded 2-core machine


def units(start: int, stop: int) -> bytes:
    return b"".join(b"u%d\n" % i for i in range(start, stop))


async def csv_body(gate: asyncio.Event | None = None) -> AsyncIterator[bytes]:
    """``unit``, then u0 … u999999 in chunks; with ``gate``, the body stops after ``FIRST_PART`` units
    until the gate opens, and then ends there (the connection it would go on is gone by then)."""
    yield b"unit\n"
    for start in range(0, UNITS, CHUNK):
        if start == FIRST_PART and gate is not None:
            await gate.wait()
            return
        yield units(start, start + CHUNK)


async def _wait_until_gone(watcher: asyncpg.Connection, pid: int) -> None:
    """Until the backend ``pid`` has ended and no service connection holds a transaction open (within WAIT)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        alive = await watcher.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid)
        open_transactions = await watcher.fetchval(
            f"SELECT count(*) FROM ({SERVICE_BACKENDS} AND backend_xid IS NOT NULL) s"
        )
        if alive == 0 and open_transactions == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the killed service's backend {pid} or its transaction outlived it by {WAIT} s")


async def _assignments_loaded(client: Client, experiment_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/experiments/{experiment_id}/events")
    assert response.status_code == 200, response.text
    return [event for event in response.json()["items"] if event["action"] == "assignments_loaded"]


async def test_sigkill_during_a_large_csv_upload_keeps_nothing_and_a_new_process_takes_the_same_upload(
    client: Client, database_url: str
) -> None:
    experiment_id = (await client.post("/v1/experiments", json=HOLDOUT)).json()["id"]
    path = f"/v1/experiments/{experiment_id}/assignments"
    headers = {"Authorization": client.headers["Authorization"], "Content-Type": "text/csv"}
    killed = asyncio.Event()
    watcher = await asyncpg.connect(database_url)
    try:
        with service_process(database_url) as service:
            async with httpx.AsyncClient(base_url=service.url, headers=headers, timeout=WAIT) as http:
                upload = asyncio.create_task(http.post(path, content=csv_body(killed)))
                try:
                    writer = await wait_for_service_backend(watcher, WRITING_ASSIGNMENTS, WAIT)
                    service.process.send_signal(signal.SIGKILL)
                    exit_code = await asyncio.wait_for(asyncio.to_thread(service.process.wait), WAIT)
                finally:
                    killed.set()  # the body ends: httpx finds the connection closed instead of waiting on it
                outcome = (await asyncio.wait_for(asyncio.gather(upload, return_exceptions=True), WAIT))[0]
        await _wait_until_gone(watcher, writer)
        stored = await watcher.fetchval("SELECT count(*) FROM assignments WHERE experiment_id = $1", experiment_id)
        summary = (await client.get(f"{path}/summary")).json()
        loads_after_kill = await _assignments_loaded(client, experiment_id)

        # A new process on the same database, no repair in between: the same upload, whole.
        with service_process(database_url) as restarted:
            async with httpx.AsyncClient(base_url=restarted.url, headers=headers, timeout=UPLOAD_WAIT) as http:
                retried = await asyncio.wait_for(http.post(path, content=csv_body()), UPLOAD_WAIT)
        stored_after_retry = await watcher.fetchval(
            "SELECT count(*) FROM assignments WHERE experiment_id = $1", experiment_id
        )
    finally:
        await watcher.close()

    assert exit_code == -signal.SIGKILL
    # The connection closed with no answer (reset, or ended mid-request): not an answer, not a timeout.
    assert isinstance(outcome, httpx.ReadError | httpx.WriteError | httpx.RemoteProtocolError), repr(outcome)
    assert stored == 0
    assert [channel["units"] for channel in summary["channels"]] == [0, 0]
    assert loads_after_kill == []
    assert retried.status_code == 200, retried.text
    assert retried.json()["units_received"] == UNITS
    assert retried.json()["units_assigned"] == UNITS
    assert stored_after_retry == 2 * UNITS
    assert [event["details"]["units_assigned"] for event in await _assignments_loaded(client, experiment_id)] == [UNITS]
