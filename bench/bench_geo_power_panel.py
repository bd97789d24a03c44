"""Geo power on a large panel (issue 22): time to the 202, the job's progress over time, and the memory of the
API process and of the worker.

A 5,000-market panel took 8.5 s to answer 202 (the README promises a job after 2 s), showed progress 0.0 for
over 30 s, and the API process reached 694 MB, because the request read the whole panel before deciding.

Starts the API (uvicorn, one process) and one ``counterfact worker`` on a throwaway database of
``DATABASE_URL``'s server, uploads a synthetic panel (``--markets`` x ``--days``, streamed CSV), asks
``POST /v1/geo/power`` for two treated markets, polls the job every ``--poll`` seconds and prints the
progress it reports, then each process's peak resident memory (``VmHWM``, Linux).

Run: ``DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/bench_geo_power_panel.py``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testkit.database import create_database, drop_database  # noqa: E402
from testkit.service import admin_headers, free_port  # noqa: E402


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set size so far (``VmHWM``), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


async def panel_csv(markets: int, days: int, seed: int) -> AsyncIterator[bytes]:
    """A panel of ``markets`` x ``days``: a level per market, a shared weekly pattern and noise."""
    rng = np.random.default_rng(seed)
    dates = [(date(2024, 1, 1) + timedelta(days=d)).isoformat() for d in range(days)]
    weekly = 1.0 + 0.1 * np.sin(2 * np.pi * np.arange(days) / 7)
    yield b"geo,kpi,date\n"
    for start in range(0, markets, 250):
        lines: list[str] = []
        for m in range(start, min(markets, start + 250)):
            level = rng.uniform(500, 5000)
            kpi = level * weekly * (1 + 0.05 * rng.standard_normal(days))
            lines.extend(f"market-{m:05d},{k:.2f},{d}\n" for k, d in zip(kpi, dates, strict=True))
        yield "".join(lines).encode()


async def run(args: argparse.Namespace) -> None:
    server_url = os.environ["DATABASE_URL"]
    url = await create_database(server_url, "counterfact_bench")
    env = {**os.environ, "DATABASE_URL": url, "COUNTERFACT_LOG_LEVEL": "WARNING"}
    port = free_port()
    api = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--no-access-log", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = subprocess.Popen([sys.executable, "-m", "api.cli", "worker"], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=600) as client:
            for _ in range(600):
                try:
                    if (await client.get("/health")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
            client.headers.update(admin_headers(url))
            started = time.perf_counter()
            upload = await client.post(
                "/v1/geo/datasets?name=large",
                content=panel_csv(args.markets, args.days, args.seed),
                headers={"Content-Type": "text/csv"},
            )
            assert upload.status_code == 201, upload.text
            print(f"upload: {args.markets} markets x {args.days} days in {time.perf_counter() - started:.1f} s")
            print(f"API peak RSS after the upload: {peak_rss_mb(api.pid):.0f} MB")
            body = {
                "dataset_id": upload.json()["id"],
                "treatment_markets": ["market-00000", "market-00001"],
                "durations": [args.duration],
                "effect_sizes": [0.0, 0.05, 0.1, 0.15, 0.2],
            }
            started = time.perf_counter()
            response = await client.post("/v1/geo/power", json=body)
            answered = time.perf_counter() - started
            print(f"POST /v1/geo/power: {response.status_code} after {answered:.2f} s")
            print(f"API peak RSS after the request: {peak_rss_mb(api.pid):.0f} MB")
            if response.status_code != 202:
                return
            location = response.headers["location"]
            while True:
                await asyncio.sleep(args.poll)
                job = (await client.get(location)).json()
                elapsed = time.perf_counter() - started
                print(f"  {elapsed:6.1f} s  {job['status']:9}  progress {job['progress']:.3f}")
                if job["status"] not in ("queued", "running") or elapsed > args.timeout:
                    break
            if job["status"] == "failed":
                print(f"failed: {job['error']}")
            print(f"API peak RSS: {peak_rss_mb(api.pid):.0f} MB; worker peak RSS: {peak_rss_mb(worker.pid):.0f} MB")
    finally:
        for process in (api, worker):
            process.terminate()
            process.wait(timeout=60)
        await drop_database(server_url, url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markets", type=int, default=5000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--duration", type=int, default=14)
    parser.add_argument("--poll", type=float, default=2.0)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--seed", type=int, default=22)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
