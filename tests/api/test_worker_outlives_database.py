"""Workers that outlive their database (issue 22): ``counterfact serve`` on a PostgreSQL server of the test's
own, restarted under it; and a worker process killed under ``serve``.

Before, every worker process exited when PostgreSQL went away and ``serve`` neither noticed nor restarted
it: after a database restart the API answered again, but jobs stayed ``queued`` for ever.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx
import pytest

from api.auth.keys import Scope
from api.db.embedded import start_embedded_postgres, stop_embedded_postgres
from api.jobs.tasks import TaskRegistry
from api.jobs.worker import run_worker
from api.settings import Settings
from testkit.database import make_key, with_database
from testkit.service import ROOT, free_port, wait_for_health
from tests.api.helpers import Client, create_geolift_experiment
from tests.conftest import LogCollector

WAIT = 120.0  # seconds, for every wait below: a failure fails, it does not hang
GEOLIFT_ATT = 155.556  # GeoLift's walkthrough: ATT of TV in Chicago and Portland (see test_geo_results)


@dataclass(frozen=True)
class OwnServer:
    data_dir: Path
    url: str  # the service's database on it

    def restart(self) -> None:
        """Stop the server (``pg_ctl stop``, fast: every connection is cut) and start it again."""
        stop_embedded_postgres(self.data_dir)
        start_embedded_postgres(self.data_dir)


@pytest.fixture
async def own_server() -> AsyncIterator[OwnServer]:
    """An embedded PostgreSQL of this test's own (restarting the shared one would disturb other tests)."""
    data_dir = Path(tempfile.mkdtemp(prefix="counterfact-restart-"))
    try:
        server_url = start_embedded_postgres(data_dir)
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute('CREATE DATABASE "counterfact"')
        finally:
            await admin.close()
        yield OwnServer(data_dir, with_database(server_url, "counterfact"))
    finally:
        stop_embedded_postgres(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


@contextmanager
def serve(database_url: str, data_dir: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``counterfact serve`` with one job worker on ``database_url``; SIGTERM (then SIGKILL) at the end."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "COUNTERFACT_DATA_DIR": str(data_dir),
        "COUNTERFACT_LOG_LEVEL": "WARNING",
        "COUNTERFACT_JOB_HEARTBEAT_TIMEOUT_SECONDS": "5",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--job-workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, process, seconds=WAIT)
        yield process, url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)


def _children(process: subprocess.Popen[bytes]) -> list[int]:
    """The worker processes ``serve`` runs (uvicorn runs in ``serve``'s own process). Every thread's children:
    a replacement is started by the supervising thread."""
    tasks = Path(f"/proc/{process.pid}/task")
    return sorted(int(pid) for task in tasks.iterdir() for pid in (task / "children").read_text().split())


async def _health_when(client: httpx.AsyncClient, condition: Any) -> dict[str, Any]:
    """``/health``'s body once it answers 200 and ``condition(body)`` holds (within WAIT)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            response = await client.get("/health")
        except httpx.HTTPError:
            response = None
        if response is not None and response.status_code == 200 and condition(response.json()):
            body: dict[str, Any] = response.json()
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"/health did not meet the condition within {WAIT} s")


async def _finished_job(client: httpx.AsyncClient, location: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        job: dict[str, Any] = (await client.get(location)).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        await asyncio.sleep(0.2)
    raise AssertionError(f"the job was still {job['status']} after {WAIT} s")


async def _geo_results_job(client: httpx.AsyncClient, experiment_id: str) -> str:
    """Queue the experiment's results as a job; its location."""
    started = await client.get(f"/v1/experiments/{experiment_id}/results", headers={"Prefer": "respond-async"})
    assert started.status_code == 202, started.text
    return started.headers["location"]


async def test_a_database_restart_under_serve_keeps_its_worker_and_a_queued_job_finishes(
    own_server: OwnServer,
) -> None:
    with serve(own_server.url, own_server.data_dir) as (process, url):
        headers = {"Authorization": f"Bearer {await make_key(own_server.url, Scope.ADMIN)}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
            experiment_id = await create_geolift_experiment(cast(Client, client))
            await _health_when(client, lambda body: body["workers"]["live"] == 1)
            workers = _children(process)

            await asyncio.to_thread(own_server.restart)
            # The API is back at once; the job is queued while the worker is still connecting again.
            await _health_when(client, lambda body: True)
            location = await _geo_results_job(client, experiment_id)

            job = await _finished_job(client, location)
            assert job["status"] == "succeeded", job
            assert job["result"]["att"]["estimate"] == pytest.approx(GEOLIFT_ATT, rel=0.005)
            assert _children(process) == workers  # the same worker process: it reconnected, it did not exit
            await _health_when(client, lambda body: body["workers"]["live"] == 1)


async def test_a_worker_killed_under_serve_is_replaced_and_the_next_job_finishes(own_server: OwnServer) -> None:
    with serve(own_server.url, own_server.data_dir) as (process, url):
        headers = {"Authorization": f"Bearer {await make_key(own_server.url, Scope.ADMIN)}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
            experiment_id = await create_geolift_experiment(cast(Client, client))
            await _health_when(client, lambda body: body["workers"]["live"] == 1)
            (killed,) = _children(process)
            os.kill(killed, signal.SIGKILL)

            deadline = time.monotonic() + WAIT
            while _children(process) in ([], [killed]) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            (replacement,) = _children(process)
            assert replacement != killed

            job = await _finished_job(client, await _geo_results_job(client, experiment_id))
            assert job["status"] == "succeeded", job
            assert job["result"]["att"]["estimate"] == pytest.approx(GEOLIFT_ATT, rel=0.005)


async def test_a_worker_whose_database_is_unreachable_keeps_trying_until_stopped(settings: Settings) -> None:
    collector = LogCollector()
    log = logging.getLogger("counterfact.worker")
    log.addHandler(collector)
    stop = asyncio.Event()
    unreachable = replace(settings, database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere")
    try:
        running = asyncio.create_task(run_worker(unreachable, TaskRegistry(), stop))
        for _ in range(1200):  # two failed connections, backed off (a failure fails within a minute)
            if len(collector.records) >= 2 or running.done():
                break
            await asyncio.sleep(0.05)
        assert len(collector.records) >= 2
        assert not running.done()  # it did not exit
        stop.set()
        await asyncio.wait_for(running, timeout=30)  # and it ends cleanly when asked
    finally:
        log.removeHandler(collector)
    assert all("cannot reach its database" in record.getMessage() for record in collector.records)
