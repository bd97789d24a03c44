"""Holdout results read right after a bulk load into a database that already holds a large experiment.

Run: ``.venv/bin/python bench/bench_results_after_load.py [--first 1000000] [--second 200000] [--embedded]``.

1. A throwaway database on ``DATABASE_URL``'s server (default ``postgresql://postgres@127.0.0.1:5432/test``),
   or with ``--embedded`` on the embedded PostgreSQL the service falls back to (started here in a temporary
   directory); the service on it with uvicorn.
2. A first experiment with ``--first`` units and their outcomes, filled in SQL (``INSERT … SELECT``), then
   ``VACUUM ANALYZE``: a database whose statistics know that experiment only; its results are read once
   (as a team that ran its first test has).
3. **Loaded through the API and read at once**: a second experiment, its ``--second`` units through the
   assignments CSV endpoint and their outcomes through the outcomes CSV endpoint, then at once
   ``GET …/results`` (``Prefer: wait=3600``).
4. **Loaded behind the service's back and read at once**: a third experiment of the same size filled in SQL
   with autovacuum off on the two tables, so the statistics do not know it at all when it is read (what a
   load leaves until ANALYZE runs; the service's own loads analyse what they grew).
5. ``VACUUM ANALYZE``, then for the second experiment the **bare SQL aggregate** (count, sum, sum of squares
   per channel and arm, outcomes joined to assignments) and the service's results, ``--repeats`` times each,
   interleaved; each service read asks another confidence level, so that it is computed, not the answer kept
   from an identical request; then the same question again, ``--repeats`` times: the kept answer.

The ratios compare each read with the minimum of the bare aggregate on analysed tables (target <= 1.5x).
Client, server and PostgreSQL share the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from api.db.embedded import start_embedded_postgres, stop_embedded_postgres
from bench.bench_outcome_results import BARE_AGGREGATE
from testkit.database import throwaway_database
from testkit.service import admin_headers, free_port, server

FILL_ASSIGNMENTS = """
INSERT INTO assignments (experiment_id, unit, position, arm, assigned_at)
SELECT $1, $3 || g, 0, (random() < 0.1)::int, now() FROM generate_series(1, $2::int) AS g
"""
FILL_OUTCOMES = """
INSERT INTO holdout_outcomes (experiment_id, unit, value, covariate, recorded_at)
SELECT $1, $3 || g, (random() < 0.05)::int::float8, NULL, now() FROM generate_series(1, $2::int) AS g
"""
EXPERIMENT = {
    "kind": "holdout",
    "name": "bench",
    "metric": {"kind": "proportion"},
    "channels": [{"name": "meta", "holdout_fraction": 0.1}],
}


def csv_body(header: str, *, units: int, prefix: str) -> bytes:
    """``unit`` lines, or ``unit,value`` lines with every 19th unit converted."""
    rows = [f"{prefix}{i}" if header == "unit" else f"{prefix}{i},{int(i % 19 == 0)}" for i in range(1, units + 1)]
    return (header + "\n" + "\n".join(rows) + "\n").encode()


async def create(client: httpx.AsyncClient) -> uuid.UUID:
    response = await client.post("/v1/experiments", json=EXPERIMENT)
    response.raise_for_status()
    return uuid.UUID(response.json()["id"])


async def read_results(client: httpx.AsyncClient, experiment_id: uuid.UUID, confidence_level: float = 0.95) -> float:
    """Seconds for the results at ``confidence_level`` (a level not read before is a new question: computed)."""
    started = time.perf_counter()
    response = await client.get(
        f"/v1/experiments/{experiment_id}/results",
        params={"confidence_level": confidence_level},
        headers={"Prefer": "wait=3600"},
    )
    response.raise_for_status()
    return time.perf_counter() - started


async def run(database_url: str, args: argparse.Namespace) -> None:
    connection = await asyncpg.connect(database_url)
    with server(database_url, free_port()) as base:
        async with httpx.AsyncClient(base_url=base, timeout=3600, headers=admin_headers(database_url)) as client:
            first = await create(client)
            started = time.perf_counter()
            await connection.execute(FILL_ASSIGNMENTS, first, args.first, "first-", timeout=None)
            await connection.execute(FILL_OUTCOMES, first, args.first, "first-", timeout=None)
            await connection.execute("VACUUM ANALYZE assignments", timeout=None)
            await connection.execute("VACUUM ANALYZE holdout_outcomes", timeout=None)
            print(f"first experiment: {args.first:,} units and outcomes in {time.perf_counter() - started:.0f} s")
            print(f"its results (the server's first results read): {await read_results(client, first):.2f} s")

            second = await create(client)
            started = time.perf_counter()
            for path, header in (("assignments", "unit"), ("outcomes", "unit,value")):
                body = csv_body(header, units=args.second, prefix="second-")
                response = await client.post(
                    f"/v1/experiments/{second}/{path}", content=body, headers={"Content-Type": "text/csv"}
                )
                response.raise_for_status()
            loaded = time.perf_counter() - started
            api_read = await read_results(client, second)
            print(f"second experiment: {args.second:,} units and outcomes loaded through the API in {loaded:.1f} s")

            await connection.execute("ALTER TABLE assignments SET (autovacuum_enabled = false)")
            await connection.execute("ALTER TABLE holdout_outcomes SET (autovacuum_enabled = false)")
            third = await create(client)
            await connection.execute(FILL_ASSIGNMENTS, third, args.second, "third-", timeout=None)
            await connection.execute(FILL_OUTCOMES, third, args.second, "third-", timeout=None)
            stale_read = await read_results(client, third)
            await connection.execute("ALTER TABLE assignments RESET (autovacuum_enabled)")
            await connection.execute("ALTER TABLE holdout_outcomes RESET (autovacuum_enabled)")

            await connection.execute("VACUUM ANALYZE assignments", timeout=None)
            await connection.execute("VACUUM ANALYZE holdout_outcomes", timeout=None)
            bare_times, service_times = [], []
            await connection.fetch(BARE_AGGREGATE, second, timeout=None)  # warm-up
            await read_results(client, second, 0.9)
            for repeat in range(args.repeats):  # interleaved, so both sides see the same load on a shared machine
                started = time.perf_counter()
                await connection.fetch(BARE_AGGREGATE, second, timeout=None)
                bare_times.append(time.perf_counter() - started)
                service_times.append(await read_results(client, second, 0.91 + repeat / 1000))
            kept_times = [await read_results(client, second, 0.9) for _ in range(args.repeats)]
    await connection.close()
    bare = min(bare_times)
    print("| what | time | vs bare aggregate (analysed) |")
    print("|---|---:|---:|")
    median = statistics.median(bare_times)
    print(f"| bare SQL aggregate, analysed tables | min {bare:.3f} s, median {median:.3f} s | 1 |")
    print(f"| GET …/results, analysed tables | min {min(service_times):.3f} s | {min(service_times) / bare:.2f}x |")
    print(f"| GET …/results right after the API load | {api_read:.3f} s | {api_read / bare:.2f}x |")
    print(f"| GET …/results again (the kept answer) | min {min(kept_times):.3f} s | {min(kept_times) / bare:.2f}x |")
    print(f"| GET …/results after an SQL load, stale statistics | {stale_read:.3f} s | {stale_read / bare:.2f}x |")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--first", type=int, default=1_000_000)
    parser.add_argument("--second", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--embedded", action="store_true", help="on the embedded PostgreSQL, not DATABASE_URL's")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="counterfact_bench_")) if args.embedded else None
    server_url = (
        start_embedded_postgres(data_dir)
        if data_dir is not None
        else os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    try:
        async with throwaway_database(server_url, "counterfact_bench") as database_url:
            await run(database_url, args)
    finally:
        if data_dir is not None:
            stop_embedded_postgres(data_dir)


if __name__ == "__main__":
    asyncio.run(main())
