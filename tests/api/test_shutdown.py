"""Graceful shutdown of the API process: SIGTERM stops it taking connections, lets the requests in flight
finish (here a streamed CSV upload, half of it still to be sent when the signal arrives), then it exits;
``counterfact serve`` then stops the workers and the embedded PostgreSQL it started.

(Workers on SIGTERM hand their jobs back to the queue: ``tests/api/test_jobs.py``.)
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO

import asyncpg
import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from testkit.service import ROOT, free_port, wait_for_health
from tests.api.service_process import service_process, wait_for_service_backend
from tests.api.streaming_client import chunked_head, stream_upload, units_with_a_fault

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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"  # a zombie has ended


def _gone_within(pids: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while any(_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _serve_embedded(data_dir: Path, port: int, stdout: IO[bytes] | int = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """``counterfact serve`` with one job worker on ``port``, on the embedded PostgreSQL in ``data_dir``."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"COUNTERFACT_DATA_DIR": str(data_dir)}
    return subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--job-workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=stdout,
        stderr=subprocess.DEVNULL,
    )


def _kill_leftovers(serve: subprocess.Popen[bytes], pids: list[int]) -> None:
    """What a failed run left behind: ``serve`` if it still runs, and those of ``pids`` that do."""
    if serve.poll() is None:
        serve.kill()
        serve.wait(timeout=30)
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_sigterm_to_serve_stops_its_workers_and_the_embedded_database(tmp_path: Path) -> None:
    port = free_port()
    serve = _serve_embedded(tmp_path, port)
    started: list[int] = []
    try:
        wait_for_health(f"http://127.0.0.1:{port}", serve, seconds=120)
        postgres = int((tmp_path / "postgres" / "postmaster.pid").read_text().split()[0])
        children = [int(c) for c in Path(f"/proc/{serve.pid}/task/{serve.pid}/children").read_text().split()]
        started = [postgres, *children]
        assert _alive(postgres) and children  # the embedded server and the worker run
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=90) == 0
        assert _gone_within(started, 30)
    finally:
        _kill_leftovers(serve, started)


def _first_admin_key(output: str) -> str:
    """The admin key ``counterfact serve`` prints once on a fresh data directory."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Created the first admin API key"))
    return next(line.strip() for line in lines[start + 1 :] if line.strip())


def _children(pid: int) -> list[int]:
    return [
        int(child) for task in Path(f"/proc/{pid}/task").iterdir() for child in (task / "children").read_text().split()
    ]


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data directory for ``counterfact serve`` outside pytest's: the embedded server runs as another user,
    and every pytest session on the machine makes ``/tmp/pytest-of-root`` private again (see conftest)."""
    path = Path(tempfile.mkdtemp(prefix="counterfact-serve-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def test_sigterm_during_an_upload_whose_database_was_killed_answers_503_and_serve_exits_in_seconds(
    data_dir: Path,
) -> None:
    # Issue 22: under `make serve`, the embedded PostgreSQL's postmaster killed during a streamed 1M-unit upload;
    # the client never got an answer, and SIGTERM could not stop the service while that request hung.
    port = free_port()
    output = data_dir / "serve.out"
    with output.open("wb") as out:
        serve = _serve_embedded(data_dir, port, out)
    database_processes: list[int] = []
    signalled = 0.0
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_health(url, serve, seconds=120)
        key = _first_admin_key(output.read_text())
        postmaster = int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
        database_processes = [postmaster, *_children(postmaster)]
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}) as http:
            experiment_id = (await http.post("/v1/experiments", json=HOLDOUT)).json()["id"]

        async def fault() -> None:  # after 250,000 units; then more, until the service hangs up
            nonlocal signalled
            os.kill(postmaster, signal.SIGKILL)
            serve.send_signal(signal.SIGTERM)  # while the upload is in flight
            signalled = time.monotonic()

        head = chunked_head(f"/v1/experiments/{experiment_id}/assignments", key)
        streamed = await stream_upload(("127.0.0.1", port), head, units_with_a_fault(10, fault))
        exit_code = await asyncio.to_thread(serve.wait, 120)
        stopped_after = time.monotonic() - signalled
    finally:
        _kill_leftovers(serve, database_processes)
    assert streamed.status == 503, streamed.answer[:300]
    assert streamed.header("retry-after")
    assert streamed.closed
    assert not streamed.body_finished
    assert exit_code == 0
    assert stopped_after < 20, stopped_after
    print("STOPPED AFTER", stopped_after)
