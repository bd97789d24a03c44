"""Benchmark appending a test's days to a large geo panel against uploading the same rows as a new dataset.

Builds a panel of ``--geos`` markets x ``--years`` years of days (default 1,000 x 3, about 1.1M rows), uploads it,
then times

* ``POST /v1/geo/datasets/{id}/rows`` with the next ``--days`` days of every market as a CSV body (default 30:
  30,000 rows): the append's parse and COPY, its collision check, and the dataset's summary and data-quality
  findings recomputed on the whole grown panel (read back with ``COPY ... TO STDOUT``);
* ``POST /v1/geo/datasets`` with the same CSV body (a new dataset of those rows alone);

each ``--repeats`` times (fresh days each time for the appends), and prints the medians, their ratio and the peak
Python heap of each (``tracemalloc``). Runs in process through Litestar's ASGI test client on a throwaway database
of the server named by ``DATABASE_URL`` (or ``--database-url``), dropped at the end.

Run: ``DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/bench_geo_append.py``
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import sys
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from litestar import Litestar  # noqa: E402
from litestar.testing import AsyncTestClient  # noqa: E402

from api.app import create_app  # noqa: E402
from api.settings import settings_from_environment  # noqa: E402
from testkit.database import create_database, drop_database  # noqa: E402
from testkit.service import admin_headers  # noqa: E402

CSV = {"Content-Type": "text/csv"}


def panel_csv(geos: int, start: dt.date, days: int, seed: int) -> bytes:
    """``date,geo,kpi,spend`` for ``geos`` markets over ``days`` days from ``start``."""
    rng = np.random.default_rng(seed)
    day_text = [(start + dt.timedelta(days=k)).isoformat() for k in range(days)]
    lines = ["date,geo,kpi,spend"]
    for g in range(geos):
        kpi = np.round(rng.gamma(20.0, 50.0, size=days), 2)
        lines.extend(
            f"{d},market_{g:04d},{k},{s}" for d, k, s in zip(day_text, kpi.tolist(), (kpi * 0.05).tolist(), strict=True)
        )
    return ("\n".join(lines) + "\n").encode()


async def timed(client: AsyncTestClient[Litestar], path: str, body: bytes) -> tuple[float, float, dict[str, object]]:
    """Seconds and peak traced Python heap (MB) of one POST, and its answer."""
    tracemalloc.start()
    started = time.perf_counter()
    response = await client.post(path, content=body, headers=CSV)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    if response.status_code != 201:
        raise SystemExit(f"{path} failed: {response.status_code} {response.text[:500]}")
    answer: dict[str, object] = response.json()
    return elapsed, peak / 1e6, answer


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--geos", type=int, default=1000)
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    args = parser.parse_args()
    if not args.database_url:
        raise SystemExit("set DATABASE_URL or pass --database-url")
    first = dt.date(2021, 1, 1)
    history_days = 365 * args.years + args.years // 4
    history = panel_csv(args.geos, first, history_days, seed=7)
    url = await create_database(args.database_url, "counterfact_bench")
    appends: list[tuple[float, float]] = []
    uploads: list[tuple[float, float]] = []
    try:
        settings = replace(settings_from_environment(), database_url=url, log_level="WARNING")
        async with AsyncTestClient(app=create_app(settings), timeout=3600) as client:
            client.headers.update(admin_headers(url))  # the app has migrated the database by now
            created = await client.post("/v1/geo/datasets?name=history", content=history, headers=CSV)
            if created.status_code != 201:
                raise SystemExit(f"upload failed: {created.status_code} {created.text[:500]}")
            dataset_id = created.json()["id"]
            rows = 0
            for k in range(args.repeats):
                start = first + dt.timedelta(days=history_days + k * args.days)
                body = panel_csv(args.geos, start, args.days, seed=100 + k)
                elapsed, peak, answer = await timed(client, f"/v1/geo/datasets/{dataset_id}/rows", body)
                appends.append((elapsed, peak))
                dataset = answer["dataset"]
                assert isinstance(dataset, dict)
                rows = int(dataset["row_count"])
                elapsed, peak, _ = await timed(client, "/v1/geo/datasets?name=days", body)
                uploads.append((elapsed, peak))
    finally:
        await drop_database(args.database_url, url)
    append = statistics.median(a for a, _ in appends)
    upload = statistics.median(u for u, _ in uploads)
    print(
        f"| panel after the appends | appended rows | append (median of {args.repeats}) | new dataset of the same rows "
        "| ratio | peak Python heap: append / upload |"
    )
    print("|---|---|---|---|---|---|")
    print(
        f"| {args.geos} geos, {rows:,} rows | {args.geos * args.days:,} | {append:.2f} s "
        f"(min {min(a for a, _ in appends):.2f}) | {upload:.2f} s (min {min(u for u, _ in uploads):.2f}) "
        f"| {append / upload:.1f}x | {max(p for _, p in appends):.0f} MB / {max(p for _, p in uploads):.0f} MB |"
    )


if __name__ == "__main__":
    asyncio.run(main())
