"""Holdout results from unit-level outcomes vs the bare SQL aggregate they need.

Run: ``.venv/bin/python bench/bench_outcome_results.py [--units 10000000] [--repeats 3]``.

1. Creates a throwaway database on ``DATABASE_URL``'s server (default
   ``postgresql://postgres@127.0.0.1:5432/test``) and starts the service on it with uvicorn.
2. Creates a holdout experiment with three channels (mean metric) through the API, then fills
   ``assignments`` (N units × 3 channels, arms drawn at each channel's holdout fraction) and
   ``holdout_outcomes`` (N values) with ``INSERT … SELECT`` from ``generate_series`` inside PostgreSQL:
   what is measured here is reading them, not loading them. ``VACUUM ANALYZE`` afterwards.
3. **Bare SQL aggregate**: ``count``, ``sum`` and sum of squares of the outcome per channel and arm, the
   outcomes joined to their assignments, over asyncpg.
4. **Service**: ``GET /v1/experiments/{id}/results`` end to end over HTTP (the same join with the
   coverage counts, covariate sums, then the statistics per channel, Holm, decisions and chart), with
   ``Prefer: wait=3600`` so that the answer comes in the response rather than as a job, and another
   confidence level each time, so that each read is computed rather than the answer kept from the last.

Each is run once to warm the caches, then ``--repeats`` times; the minimum and median are reported,
and the ratio of minimums (target ≤ 1.5x). Client, server and PostgreSQL share the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from api.results.repository import QUERIES as RESULTS_QUERIES
from testkit.database import create_database, drop_database
from testkit.service import admin_headers, free_port, server

CHANNELS = [("meta", 0.1), ("search", 0.05), ("tv", 0.2)]

FILL_ASSIGNMENTS = """
INSERT INTO assignments (experiment_id, unit, position, arm, assigned_at)
SELECT $1, 'user-' || lpad(g::text, 9, '0'), c.position, (random() < c.fraction)::int, now()
FROM generate_series(1, $2::int) AS g
CROSS JOIN unnest($3::smallint[], $4::float8[]) AS c (position, fraction)
"""
FILL_OUTCOMES = """
INSERT INTO holdout_outcomes (experiment_id, unit, value, covariate, recorded_at)
SELECT $1, 'user-' || lpad(g::text, 9, '0'), round((-ln(1 - random()) * 12)::numeric, 2)::float8, NULL, now()
FROM generate_series(1, $2::int) AS g
"""
BARE_AGGREGATE = """
SELECT a.position, a.arm, count(*) AS units, sum(o.value) AS sum, sum(o.value * o.value) AS sum_squares
FROM assignments AS a
JOIN holdout_outcomes AS o ON o.experiment_id = a.experiment_id AND o.unit = a.unit
WHERE a.experiment_id = $1
GROUP BY a.position, a.arm
"""


async def timed(action: Callable[[], Awaitable[object]], repeats: int) -> list[float]:
    await action()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        await action()
        times.append(time.perf_counter() - started)
    return times


def parse_args() -> argparse.Namespace:
    """The command line: ``--units``, ``--repeats``, ``--keep-database``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep-database", action="store_true", help="leave the filled database for inspection")
    return parser.parse_args()


async def create_experiment(client: httpx.AsyncClient) -> str:
    """Create the three-channel holdout experiment (mean metric) through the API; its id."""
    created = await client.post(
        "/v1/experiments",
        json={
            "kind": "holdout",
            "name": "bench",
            "metric": {"kind": "mean"},
            "channels": [{"name": n, "holdout_fraction": f} for n, f in CHANNELS],
        },
    )
    created.raise_for_status()
    experiment_id: str = created.json()["id"]
    return experiment_id


async def fill(connection: asyncpg.Connection, experiment_id: str, units: int) -> None:
    """Fill assignments and outcomes for ``units`` units inside PostgreSQL, then ``VACUUM ANALYZE``."""
    started = time.perf_counter()
    positions = list(range(len(CHANNELS)))
    fractions = [f for _, f in CHANNELS]
    await connection.execute(FILL_ASSIGNMENTS, uuid.UUID(experiment_id), units, positions, fractions, timeout=None)
    await connection.execute(FILL_OUTCOMES, uuid.UUID(experiment_id), units, timeout=None)
    await connection.execute("VACUUM ANALYZE assignments", timeout=None)
    await connection.execute("VACUUM ANALYZE holdout_outcomes", timeout=None)
    filled = time.perf_counter() - started
    print(f"filled {units:,} units x {len(CHANNELS)} channels in {filled:.0f} s")


@dataclass(frozen=True)
class Measured:
    """The times of both reads (seconds) and the query plans of both aggregates."""

    bare_times: list[float]
    service_times: list[float]
    plan: list[asyncpg.Record]
    service_plan: list[asyncpg.Record]


async def measure(
    client: httpx.AsyncClient, connection: asyncpg.Connection, experiment_id: str, repeats: int
) -> Measured:
    """Time the bare SQL aggregate and ``GET …/results``, and explain both aggregates."""

    async def bare() -> object:
        return await connection.fetch(BARE_AGGREGATE, uuid.UUID(experiment_id), timeout=None)

    levels = iter(0.95 - i / 1000 for i in range(1000))

    async def service() -> object:
        # another confidence level each time: a new question, computed, not the kept answer
        response = await client.get(
            f"/v1/experiments/{experiment_id}/results",
            params={"confidence_level": next(levels)},
            headers={"Prefer": "wait=3600"},
        )
        response.raise_for_status()
        return response

    bare_times = await timed(bare, repeats)
    service_times = await timed(service, repeats)
    plan = await connection.fetch("EXPLAIN " + BARE_AGGREGATE, uuid.UUID(experiment_id))
    service_plan = await connection.fetch(
        "EXPLAIN " + RESULTS_QUERIES["aggregate_outcomes"], uuid.UUID(experiment_id), 0.0, 0.0
    )
    return Measured(bare_times, service_times, plan, service_plan)


def report(measured: Measured) -> None:
    """Print both plans, the table of times and the ratio of minimums against its target."""
    bare_times, service_times = measured.bare_times, measured.service_times
    print("bare aggregate plan:\n  " + "\n  ".join(r[0] for r in measured.plan))
    print("service aggregate plan:\n  " + "\n  ".join(r[0] for r in measured.service_plan))
    print("| what | min | median |")
    print("|---|---:|---:|")
    print(f"| bare SQL aggregate | {min(bare_times):.2f} s | {statistics.median(bare_times):.2f} s |")
    print(f"| GET …/results | {min(service_times):.2f} s | {statistics.median(service_times):.2f} s |")
    ratio = min(service_times) / min(bare_times)
    print(f"ratio service / bare aggregate: {ratio:.2f}x (target <= 1.5x: {'met' if ratio <= 1.5 else 'MISSED'})")


async def main() -> None:
    args = parse_args()
    server_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    database_url = await create_database(server_url, "counterfact_bench")
    try:
        with server(database_url, free_port()) as base:
            async with httpx.AsyncClient(base_url=base, timeout=3600, headers=admin_headers(database_url)) as client:
                experiment_id = await create_experiment(client)
                connection = await asyncpg.connect(database_url)
                try:
                    await fill(connection, experiment_id, args.units)
                    measured = await measure(client, connection, experiment_id, args.repeats)
                finally:
                    await connection.close()
        report(measured)
    finally:
        if args.keep_database:
            print(f"kept database {database_url}")
        else:
            await drop_database(server_url, database_url)


if __name__ == "__main__":
    asyncio.run(main())
