"""Faults over the real app (issue 12, "Proof"): the service's database connections are terminated
while a geo dataset upload is being written and while a geo experiment's results are computed.

During the fault the answer is 503 problem+json with ``Retry-After`` (or a clean 4xx / a clean answer),
never a 500; nothing partial is left behind; the next request succeeds without a restart.
"""

from __future__ import annotations

import asyncio
import threading

import asyncpg
import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.api.helpers import create_geolift_experiment
from tests.api.service_process import SERVICE_BACKENDS

Client = AsyncTestClient[Litestar]
CSV = {"Content-Type": "text/csv"}


class Terminator:
    """Terminates the service's connections from a thread of its own until stopped.

    The test client runs the app to completion inside each call, so the fault has to come from
    another thread. With ``in_write`` the first termination waits until a service connection holds an
    open write transaction (it has an xid: the dataset row is inserted, the COPY under way), so the
    fault lands in the middle of the request's writes.
    """

    def __init__(self, database_url: str, *, in_write: bool = False) -> None:
        self.database_url = database_url
        self.in_write = in_write
        self.terminated = 0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        connection = await asyncpg.connect(self.database_url)
        try:
            self._ready.set()
            if self.in_write:
                while not self._stop.is_set():
                    pid = await connection.fetchval(SERVICE_BACKENDS + " AND backend_xid IS NOT NULL LIMIT 1")
                    if pid is not None:
                        self.terminated += int(await connection.fetchval("SELECT pg_terminate_backend($1)", pid))
                        break
                    await asyncio.sleep(0.001)
            while not self._stop.is_set():
                for row in await connection.fetch(SERVICE_BACKENDS):
                    self.terminated += int(await connection.fetchval("SELECT pg_terminate_backend($1)", row["pid"]))
                await asyncio.sleep(0.01)
        finally:
            self._ready.set()
            await connection.close()

    def __enter__(self) -> Terminator:
        self._thread.start()
        self._ready.wait(timeout=10)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _clean_failure_or(response: httpx.Response, *success: int) -> None:
    """A success status, a 503 problem with Retry-After, or a clean 4xx problem; never a 5xx otherwise."""
    if response.status_code in success:
        return
    assert response.status_code == 503 or 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    if response.status_code == 503:
        assert int(response.headers["retry-after"]) > 0


def _panel_csv(geos: int, days: int) -> bytes:
    """A long geo panel (geo,kpi,date), ``geos * days`` rows."""
    dates = [f"2021-{1 + d // 28:02d}-{1 + d % 28:02d}" for d in range(days)]
    lines = [b"geo,kpi,date\n"]
    for g in range(geos):
        lines.append("".join(f"market-{g},{1000 + (g * 7 + d * 13) % 97}.5,{dates[d]}\n" for d in range(days)).encode())
    return b"".join(lines)


async def _counts(connection: asyncpg.Connection) -> tuple[int, int]:
    datasets = await connection.fetchval("SELECT count(*) FROM geo_datasets")
    observations = await connection.fetchval("SELECT count(*) FROM geo_observations")
    return int(datasets), int(observations)


async def test_connections_terminated_during_a_geo_upload_leave_nothing_and_the_next_upload_succeeds(
    client: Client, connection: asyncpg.Connection, database_url: str
) -> None:
    body = _panel_csv(geos=400, days=336)  # 134,400 rows, ~4 MB
    with Terminator(database_url, in_write=True) as fault:
        response = await client.post("/v1/geo/datasets?name=faulty", content=body, headers=CSV)
    assert fault.terminated >= 1, "the fault never reached the upload's write transaction"
    assert response.status_code != 201, "the upload survived a terminated COPY: the fault did not land"
    _clean_failure_or(response)
    # All rows of the request or none: here none, as the upload was refused.
    assert await _counts(connection) == (0, 0)

    # The service recovers by itself: the same upload, unharmed, succeeds.
    retried = await client.post("/v1/geo/datasets?name=retried", content=body, headers=CSV)
    assert retried.status_code == 201, retried.text
    assert await _counts(connection) == (1, 400 * 336)


async def test_connections_terminated_during_geo_results_answer_cleanly_and_the_next_call_succeeds(
    client: Client, database_url: str
) -> None:
    experiment_id = await create_geolift_experiment(client)
    path = f"/v1/experiments/{experiment_id}/results"
    wait = {"Prefer": "wait=30"}  # computed in the request, not handed to a job

    with Terminator(database_url) as fault:
        response = await client.get(path, headers=wait)
    assert fault.terminated >= 1, "no service connection was terminated during the computation"
    _clean_failure_or(response, 200)
    if response.status_code == 200:
        assert response.json()["att"]["estimate"] == pytest.approx(155.556, rel=0.005)

    # Recovery without a restart: the same call answers the figures.
    again = await client.get(path, headers=wait)
    assert again.status_code == 200, again.text
    assert again.json()["att"]["estimate"] == pytest.approx(155.556, rel=0.005)
