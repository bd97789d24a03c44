"""Benchmark geo-lift design end to end over HTTP: `POST /v1/geo/power` and `POST /v1/geo/market-selection`.

Starts the API (uvicorn, one process) and ``--workers`` ``counterfact worker`` processes on a throwaway
database of ``DATABASE_URL``'s server, uploads the panel, then times

* ``power``: one set of markets, 11 effect sizes, 2 durations (median of ``--repeat`` calls; target <= 1 s), each
  computed, then each read back from its kept answer;
* ``selection``: a market selection from the POST to the job's result (target: GeoLift's walkthrough
  <= 5 s with one worker; trimmed_match's 174 geos x 364 days, sizes 2-10, <= 60 s with one worker, and
  about half that with two).

Run:
``DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/bench_geo_design.py power``
``... bench/bench_geo_design.py selection --dataset geolift --workers 1``
``... bench/bench_geo_design.py selection --dataset trimmed_match --workers 2``
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testkit.database import throwaway_database  # noqa: E402
from testkit.service import admin_headers, free_port, server  # noqa: E402

DATA = ROOT / "tests" / "data"
WORKER_START_SECONDS = 5.0
EFFECTS_11 = [round(0.025 * k, 3) for k in range(11)]

SELECTIONS: dict[str, dict[str, Any]] = {
    # GeoLift's walkthrough (GeoLift 2.7.5 takes 28 s for it on one core).
    "geolift": {
        "treatment_sizes": [2, 3, 4, 5],
        "durations": [10, 15],
        "effect_sizes": [0.0, 0.05, 0.1, 0.15, 0.2],
        "include": ["chicago"],
        "exclude": ["honolulu"],
        "cost_per_kpi": 7.5,
        "budget": 100000,
        "alpha": 0.1,
    },
    "trimmed_match": {
        "treatment_sizes": list(range(2, 11)),
        "durations": [28],
        "effect_sizes": [0.0, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1],
        "alpha": 0.1,
    },
}


def panel_csv(dataset: str) -> str:
    """The panel as `date,geo,kpi` CSV (trimmed_match's timestamps cut to dates)."""
    if dataset == "geolift":
        with (DATA / "geolift" / "GeoLift_PreTest.csv").open() as fh:
            rows = list(csv.DictReader(fh))
        return "date,geo,kpi\n" + "".join(f"{r['date']},{r['location']},{r['Y']}\n" for r in rows)
    with (DATA / "trimmed_match" / "example_data_for_design.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    return "date,geo,kpi\n" + "".join(f"{r['date'][:10]},geo{r['geo']},{r['response']}\n" for r in rows)


@contextmanager
def workers(database_url: str, count: int) -> Iterator[None]:
    env = {**os.environ, "DATABASE_URL": database_url, "COUNTERFACT_LOG_LEVEL": "WARNING"}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "api.cli", "worker"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]
    time.sleep(WORKER_START_SECONDS)  # imports, migrations check, LISTEN: not part of a selection's time
    try:
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)


def upload(client: httpx.Client, dataset: str) -> str:
    response = client.post("/v1/geo/datasets", content=panel_csv(dataset), headers={"Content-Type": "text/csv"})
    response.raise_for_status()
    return str(response.json()["id"])


def bench_power(client: httpx.Client, dataset_id: str, repeat: int) -> None:
    """Each call a new question (its own ``cost_per_kpi``: the same simulation, another investment), so each is
    computed; then each asked again, answered from its kept answer."""
    body = {
        "dataset_id": dataset_id,
        "treatment_markets": ["chicago", "portland"],
        "durations": [10, 15],
        "effect_sizes": EFFECTS_11,
    }
    for label in ("computed", "kept answer"):
        times = []
        for k in range(repeat):
            start = time.perf_counter()
            response = client.post("/v1/geo/power", json={**body, "cost_per_kpi": 7.5 + k / 1000})
            times.append(time.perf_counter() - start)
            response.raise_for_status()
            assert ("age" in response.headers) == (label == "kept answer"), response.headers
        print(
            f"POST /v1/geo/power, 2 markets x 11 effects x 2 durations, {label}: median "
            f"{statistics.median(times) * 1000:.0f} ms (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}, "
            f"{repeat} calls)"
        )


def timed_job(client: httpx.Client, path: str, body: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """POST ``body`` to ``path`` (work that is a job) and poll the job's ``Location`` until it has finished: the
    job, and the seconds from the POST to its end."""
    start = time.perf_counter()
    response = client.post(path, json=body)
    response.raise_for_status()
    location = response.headers["location"]
    while True:
        job: dict[str, Any] = client.get(location).json()
        if job["status"] not in ("queued", "running"):
            return job, time.perf_counter() - start
        time.sleep(0.05)


def bench_selection(client: httpx.Client, dataset_id: str, dataset: str, count: int) -> None:
    body = {"dataset_id": dataset_id, **SELECTIONS[dataset]}
    job, elapsed = timed_job(client, "/v1/geo/market-selection", body)
    result = job.get("result") or {}
    print(
        f"market selection on {dataset} with {count} worker(s): {elapsed:.2f} s, status {job['status']}, "
        f"{result.get('considered')} designs simulated, {len(result.get('candidates', []))} listed"
    )


@asynccontextmanager
async def bench_service(database_url: str | None) -> AsyncIterator[tuple[str, httpx.Client]]:
    """The API (uvicorn) on a throwaway database of ``database_url``'s server (``DATABASE_URL``'s without one):
    that database's URL and an admin client of the API."""
    server_url = database_url or os.environ["DATABASE_URL"]
    async with throwaway_database(server_url, "counterfact_bench") as bench_database:
        with (
            server(bench_database, free_port()) as base,
            httpx.Client(base_url=base, timeout=600, headers=admin_headers(bench_database)) as client,
        ):
            yield bench_database, client


async def main_async(args: argparse.Namespace) -> None:
    async with bench_service(args.database_url) as (database_url, client):
        dataset = "geolift" if args.mode == "power" else args.dataset
        dataset_id = upload(client, dataset)
        if args.mode == "power":
            bench_power(client, dataset_id, args.repeat)
        else:
            with workers(database_url, args.workers):
                bench_selection(client, dataset_id, dataset, args.workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["power", "selection"])
    parser.add_argument("--dataset", choices=sorted(SELECTIONS), default="geolift")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--database-url", default=None)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
