"""Bounded load: concurrent clients mixing power calculations, single-unit lookups and results reads.

Run: ``.venv/bin/python bench/bench_load.py [--seconds 60] [--clients 200] [--units 20000]``.

1. Creates a throwaway database on ``DATABASE_URL``'s server (default
   ``postgresql://postgres@127.0.0.1:5432/test``) and starts the service on it with uvicorn, as
   ``testkit/service.py``'s ``server()`` does (one worker, the service's default settings: pool, rate
   limits, job hand-off after 2 s).
2. With an admin key (``counterfact keys create``) creates a holdout experiment (mean metric, one
   channel at a 10 % holdout) and fills ``--units`` assignments and outcomes inside PostgreSQL.
3. Gives each client a read key of its own (as independent callers have; the per-key rate limit then
   applies per client) and runs ``--clients`` closed-loop clients against ``127.0.0.1`` only, for
   exactly ``--seconds``: each request is, at random (seeded), ``POST /v1/power/holdout`` (40 %),
   ``GET /v1/experiments/{id}/assignments/{unit}`` for a random unit (40 %) or
   ``GET /v1/experiments/{id}/results`` with ``Prefer: wait=30`` (20 %).
4. Prints the total, the errors by status (any answer other than 200, and transport errors), the
   throughput and p50/p99 latency per kind. Client, server and PostgreSQL share the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from api.auth.keys import Scope
from api.auth.service import create_key
from testkit.database import throwaway_database
from testkit.service import admin_headers, free_port, server

FILL_ASSIGNMENTS = """
INSERT INTO assignments (experiment_id, unit, position, arm, assigned_at)
SELECT $1, 'user-' || g::text, 0, (random() < 0.1)::int, now() FROM generate_series(1, $2::int) AS g
"""
FILL_OUTCOMES = """
INSERT INTO holdout_outcomes (experiment_id, unit, value, covariate, recorded_at)
SELECT $1, 'user-' || g::text, round((-ln(1 - random()) * 12)::numeric, 2)::float8, NULL, now()
FROM generate_series(1, $2::int) AS g
"""
POWER_BODY = {"metric": {"kind": "mean", "baseline": 12.0, "std_dev": 12.0}, "mde": {"relative": 0.02}}
KINDS = ("power", "lookup", "results")
WEIGHTS = (0.4, 0.4, 0.2)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def setup(base: str, database_url: str, units: int, clients: int) -> tuple[str, list[str]]:
    async with httpx.AsyncClient(base_url=base, timeout=600, headers=admin_headers(database_url)) as client:
        created = await client.post(
            "/v1/experiments",
            json={
                "kind": "holdout",
                "name": "load",
                "metric": {"kind": "mean"},
                "channels": [{"name": "meta", "holdout_fraction": 0.1}],
            },
        )
        created.raise_for_status()
        experiment_id: str = created.json()["id"]
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(FILL_ASSIGNMENTS, uuid.UUID(experiment_id), units, timeout=None)
        await connection.execute(FILL_OUTCOMES, uuid.UUID(experiment_id), units, timeout=None)
        await connection.execute("VACUUM ANALYZE assignments", timeout=None)
        await connection.execute("VACUUM ANALYZE holdout_outcomes", timeout=None)
        keys = [(await create_key(connection, name=f"load-{i}", scope=Scope.READ)).secret for i in range(clients)]
    finally:
        await connection.close()
    return experiment_id, keys


async def run_load(
    base: str, experiment_id: str, keys: list[str], units: int, seconds: float
) -> tuple[dict[str, list[float]], Counter[tuple[str, str]], float]:
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: Counter[tuple[str, str]] = Counter()
    results_path = f"/v1/experiments/{experiment_id}/results"

    async def one_client(index: int, key: str, deadline: float) -> None:
        rng = random.Random(index)
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=60) as client:
            while time.monotonic() < deadline:
                kind = rng.choices(KINDS, WEIGHTS)[0]
                started = time.perf_counter()
                try:
                    if kind == "power":
                        response = await client.post("/v1/power/holdout", json=POWER_BODY)
                    elif kind == "lookup":
                        unit = rng.randint(1, units)
                        response = await client.get(f"/v1/experiments/{experiment_id}/assignments/user-{unit}")
                    else:
                        response = await client.get(results_path, headers={"Prefer": "wait=30"})
                except httpx.HTTPError as error:
                    errors[(kind, type(error).__name__)] += 1
                    continue
                latencies[kind].append(time.perf_counter() - started)
                if response.status_code != 200:
                    errors[(kind, str(response.status_code))] += 1

    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(*(one_client(i, key, deadline) for i, key in enumerate(keys)))
    return latencies, errors, time.monotonic() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--units", type=int, default=20_000)
    args = parser.parse_args()
    server_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    async with throwaway_database(server_url, "counterfact_bench") as database_url:
        with server(database_url, free_port()) as base:
            assert base.startswith("http://127.0.0.1:")
            experiment_id, keys = await setup(base, database_url, args.units, args.clients)
            latencies, errors, elapsed = await run_load(base, experiment_id, keys, args.units, args.seconds)

    answered = sum(len(v) for v in latencies.values())
    failed = sum(errors.values())
    transport = sum(n for (_, what), n in errors.items() if not what.isdigit())
    print(f"{args.clients} clients, {elapsed:.1f} s, {args.units:,} units")
    print(f"total requests: {answered + transport:,}, errors: {failed:,}")
    by_status: Counter[str] = Counter()
    for (_, what), n in errors.items():
        by_status[what] += n
    print("errors by status: " + (", ".join(f"{s}: {n}" for s, n in sorted(by_status.items())) or "none"))
    print(f"throughput: {answered / elapsed:,.0f} answers/s")
    print("| kind | requests | errors | req/s | p50 | p99 |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind in KINDS:
        values = latencies.get(kind, [])
        kind_errors = sum(n for (k, _), n in errors.items() if k == kind)
        if not values:
            print(f"| {kind} | 0 | {kind_errors} | 0 | - | - |")
            continue
        p50, p99 = percentile(values, 0.50) * 1000, percentile(values, 0.99) * 1000
        print(
            f"| {kind} | {len(values):,} | {kind_errors} | {len(values) / elapsed:,.0f} | {p50:.1f} ms | {p99:.1f} ms |"
        )


if __name__ == "__main__":
    asyncio.run(main())
