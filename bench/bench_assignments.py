"""Bulk assignment end to end vs a raw ``COPY`` of the same rows, and single-unit lookup latency.

Run: ``.venv/bin/python bench/bench_assignments.py [--units 1000000] [--rate 500] [--seconds 10]``.

1. Creates a throwaway database on ``DATABASE_URL``'s server (default
   ``postgresql://postgres@127.0.0.1:5432/test``) and starts the service on it with uvicorn on a free port.
2. **Service**: a holdout experiment with two channels; N units (``user-0`` …) streamed as ``text/csv``
   to ``POST /v1/experiments/{id}/assignments`` — parsing, hashing (BLAKE2b per unit and channel), COPY
   into a staging table and ``INSERT … ON CONFLICT DO NOTHING`` into ``assignments``, one transaction.
   Timed from the first byte sent to the JSON answer.
3. **Raw COPY**: the same 2·N (experiment_id, unit, position, arm, assigned_at) rows, built in memory
   beforehand, ``COPY``-ed (asyncpg ``copy_records_to_table``) into a table keyed like ``assignments``.
4. Between the two, open-loop ``GET …/assignments/{unit}`` at ``--rate``
   requests per second for ``--seconds`` and the p50/p99 latency; at the end both load times and their
   ratio (target ≤ 2x).

The database is dropped and the server stopped at the end. Client, server and PostgreSQL share the
machine, so the figures are for this machine only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import numpy as np

from stats.assignment_hash import assign_channels

ROOT = Path(__file__).resolve().parent.parent
CHANNELS = [("meta", 0.1), ("search", 0.05)]
SALT = "bench-salt"
CHUNK_UNITS = 20_000
MAX_IN_FLIGHT = 256

RAW_TABLE = """
CREATE TABLE raw_assignments (
    experiment_id uuid NOT NULL,
    unit          text COLLATE "C" NOT NULL,
    position      smallint NOT NULL,
    arm           smallint NOT NULL,
    assigned_at   timestamptz NOT NULL,
    PRIMARY KEY (experiment_id, unit, position) INCLUDE (arm)
)
"""


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
def server(database_url: str, port: int) -> Iterator[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "COUNTERFACT_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--port", str(port), "--no-access-log"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


async def csv_chunks(units: int) -> AsyncIterator[bytes]:
    yield b"unit\n"
    for start in range(0, units, CHUNK_UNITS):
        stop = min(start + CHUNK_UNITS, units)
        yield ("\n".join(f"user-{i}" for i in range(start, stop)) + "\n").encode()


async def bench_service(base: str, units: int) -> tuple[float, str, dict[str, object]]:
    async with httpx.AsyncClient(base_url=base, timeout=3600) as client:
        created = await client.post(
            "/v1/experiments",
            json={
                "kind": "holdout",
                "name": "bench",
                "metric": {"kind": "proportion", "baseline": 0.05},
                "channels": [{"name": n, "holdout_fraction": f} for n, f in CHANNELS],
                "salt": SALT,
            },
        )
        created.raise_for_status()
        experiment_id = created.json()["id"]
        started = time.perf_counter()
        response = await client.post(
            f"/v1/experiments/{experiment_id}/assignments",
            content=csv_chunks(units),
            headers={"Content-Type": "text/csv"},
        )
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        return elapsed, experiment_id, response.json()


async def bench_raw_copy(database_url: str, units: int) -> float:
    names = [f"user-{i}" for i in range(units)]
    arms = assign_channels(SALT, CHANNELS, names)
    experiment_id = uuid.uuid4()
    now = datetime.now(UTC)
    records = [
        (experiment_id, name, position, int(arm))
        for position in range(len(CHANNELS))
        for name, arm in zip(names, arms[position].tolist(), strict=True)
    ]
    records = [(*r, now) for r in records]
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(RAW_TABLE)
        started = time.perf_counter()
        await connection.copy_records_to_table(
            "raw_assignments",
            records=records,
            columns=("experiment_id", "unit", "position", "arm", "assigned_at"),
            timeout=3600,
        )
        return time.perf_counter() - started
    finally:
        await connection.close()


async def bench_lookups(base: str, experiment_id: str, units: int, rate: int, seconds: float) -> np.ndarray:
    """Open-loop GETs at ``rate``/s; a request still waiting after 10 s counts as failed, and no more than
    ``MAX_IN_FLIGHT`` are outstanding (beyond that a request is dropped and counted)."""
    rng = np.random.default_rng(7)
    latencies: list[float] = []
    failures = dropped = 0
    limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT)
    async with httpx.AsyncClient(base_url=base, timeout=10, limits=limits) as client:

        async def one(unit: int) -> None:
            nonlocal failures
            started = time.perf_counter()
            try:
                response = await client.get(f"/v1/experiments/{experiment_id}/assignments/user-{unit}")
                response.raise_for_status()
            except httpx.HTTPError:
                failures += 1
                return
            latencies.append(time.perf_counter() - started)

        tasks: set[asyncio.Task[None]] = set()
        sent = 0
        begin = time.perf_counter()
        for index in range(int(rate * seconds)):
            delay = begin + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks = {t for t in tasks if not t.done()}
            if len(tasks) >= MAX_IN_FLIGHT:
                dropped += 1
                continue
            tasks.add(asyncio.create_task(one(int(rng.integers(units)))))
            sent += 1
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - begin
    print(
        f"lookups: {int(rate * seconds)} scheduled at {rate}/s over {seconds:.0f} s; {sent} sent, "
        f"{len(latencies)} answered ({len(latencies) / elapsed:.0f}/s), {failures} failed, "
        f"{dropped} dropped (more than {MAX_IN_FLIGHT} in flight)"
    )
    return np.array(latencies) * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    server_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    name = f"counterfact_bench_{uuid.uuid4().hex[:12]}"
    await admin(server_url, f'CREATE DATABASE "{name}"')
    database_url = with_database(server_url, name)
    try:
        with server(database_url, free_port()) as base:
            service_seconds, experiment_id, result = await bench_service(base, args.units)
            rows = args.units * len(CHANNELS)
            print(f"service CSV upload: {args.units:,} units x {len(CHANNELS)} channels: {service_seconds:.2f} s")
            print(f"  {result}")
            if args.rate > 0:
                latencies = await bench_lookups(base, experiment_id, args.units, args.rate, args.seconds)
                if len(latencies):
                    p50, p99 = np.percentile(latencies, [50, 99])
                    print(f"GET one unit: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {latencies.max():.1f} ms")
        raw_seconds = await bench_raw_copy(database_url, args.units)
        print(f"raw COPY of {rows:,} rows into an equally keyed table: {raw_seconds:.2f} s")
        ratio = service_seconds / raw_seconds
        print(f"ratio service / raw COPY: {ratio:.2f}x (target <= 2x: {'met' if ratio <= 2 else 'MISSED'})")
    finally:
        await admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
