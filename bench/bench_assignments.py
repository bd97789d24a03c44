"""Bulk assignment end to end vs a raw ``COPY`` of the same rows, and single-unit lookup latency.

Run: ``.venv/bin/python bench/bench_assignments.py [--units 1000000] [--rate 500] [--seconds 10]``.

1. Creates a throwaway database on ``DATABASE_URL``'s server (default
   ``postgresql://postgres@127.0.0.1:5432/test``) and starts the service on it with uvicorn on a free port.
2. **Service**: a holdout experiment with two channels; N units (``user-0`` …) streamed as ``text/csv``
   to ``POST /v1/experiments/{id}/assignments`` — parsing, hashing (the SHA-256 rule new experiments use,
   per unit and channel), COPY into a staging table and ``INSERT … ON CONFLICT DO NOTHING`` into
   ``assignments``, one transaction.
   Timed from the first byte sent to the JSON answer.
3. **Raw COPY**: the same 2·N (experiment_id, unit, position, arm, assigned_at) rows, built in memory
   beforehand, ``COPY``-ed (asyncpg ``copy_records_to_table``) into a table keyed like ``assignments``.
4. Between the two, open-loop ``GET …/assignments/{unit}`` for random units at ``--rate`` requests per
   second for ``--seconds`` (``bench/open_loop.py``) and the p50/p90/p99 latency; at the end both load
   times and their ratio (target ≤ 2x).

The database is dropped and the server stopped at the end. Client, server and PostgreSQL share the
machine, so the figures are for this machine only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import numpy as np

from stats.assignment_hash import assign_channels_by_rule

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.open_loop import OpenLoopResult, run_open_loop
from testkit.database import throwaway_database
from testkit.service import admin_headers, free_port, server

CHANNELS = [("meta", 0.1), ("search", 0.05)]
SALT = "bench-salt"
CHUNK_UNITS = 20_000

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


async def csv_chunks(units: int) -> AsyncIterator[bytes]:
    yield b"unit\n"
    for start in range(0, units, CHUNK_UNITS):
        stop = min(start + CHUNK_UNITS, units)
        yield ("\n".join(f"user-{i}" for i in range(start, stop)) + "\n").encode()


async def bench_service(base: str, units: int, headers: dict[str, str]) -> tuple[float, str, dict[str, object]]:
    async with httpx.AsyncClient(base_url=base, timeout=3600, headers=headers) as client:
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
    arms = assign_channels_by_rule("sha256", SALT, CHANNELS, names)
    experiment_id = uuid.uuid4()
    now = datetime.now(UTC)
    records = [
        (experiment_id, name, position, int(arm), now)
        for position in range(len(CHANNELS))
        for name, arm in zip(names, arms[position].tolist(), strict=True)
    ]
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


async def bench_lookups(
    base: str, experiment_id: str, units: int, rate: int, seconds: float, headers: dict[str, str]
) -> OpenLoopResult:
    """Open-loop ``GET …/assignments/{unit}`` for random units at ``rate``/s (see ``bench/open_loop.py``)."""
    rng = np.random.default_rng(7)
    picks = rng.integers(units, size=int(rate * seconds) + 1).tolist()
    address = urlsplit(base)
    assert address.hostname is not None and address.port is not None
    return await run_open_loop(
        address.hostname,
        address.port,
        lambda index: f"/v1/experiments/{experiment_id}/assignments/user-{picks[index]}",
        rate=rate,
        seconds=seconds,
        headers=headers,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    server_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    async with throwaway_database(server_url, "counterfact_bench") as database_url:
        # Rate limits lifted: the lookups are measured, not the admin key's 20 requests a second.
        lifted = {f"COUNTERFACT_RATE_LIMIT_{scope}": "0" for scope in ("READ", "WRITE", "ADMIN")}
        with server(database_url, free_port(), extra_env=lifted) as base:
            headers = admin_headers(database_url)  # the server has migrated the database by now
            service_seconds, experiment_id, result = await bench_service(base, args.units, headers)
            rows = args.units * len(CHANNELS)
            print(f"service CSV upload: {args.units:,} units x {len(CHANNELS)} channels: {service_seconds:.2f} s")
            print(f"  {result}")
            if args.rate > 0:
                lookups = await bench_lookups(base, experiment_id, args.units, args.rate, args.seconds, headers)
                print(f"GET one unit, open loop at {args.rate}/s for {args.seconds:.0f} s: {lookups.summary()}")
        raw_seconds = await bench_raw_copy(database_url, args.units)
        print(f"raw COPY of {rows:,} rows into an equally keyed table: {raw_seconds:.2f} s")
        ratio = service_seconds / raw_seconds
        print(f"ratio service / raw COPY: {ratio:.2f}x (target <= 2x: {'met' if ratio <= 2 else 'MISSED'})")


if __name__ == "__main__":
    asyncio.run(main())
