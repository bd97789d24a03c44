"""Benchmark the CSV upload of a geo panel against a raw COPY of the same rows.

Builds a panel of ``--geos`` markets x ``--years`` years of days (default 1,000 x 3, about 1.1M rows,
``date,geo,kpi,spend``), then times

* ``POST /v1/geo/datasets`` with the CSV body (read by the handler as a stream; parse, checks, quality findings,
  COPY of the rows in one transaction), in process through Litestar's ASGI test client;
* ``copy_records_to_table`` of the same rows, already built as Python tuples, into a table with the
  same columns and primary key as ``geo_observations``;

and prints both and their ratio (target <= 2x). Runs on a throwaway database of the server named by
``DATABASE_URL`` (or ``--database-url``), dropped at the end.

Run: ``DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/bench_geo_upload.py``
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import asyncpg
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from litestar.testing import AsyncTestClient  # noqa: E402

from api.app import create_app  # noqa: E402
from api.auth.keys import Scope  # noqa: E402
from api.settings import settings_from_environment  # noqa: E402
from testkit.database import make_key, throwaway_database  # noqa: E402

RAW_TABLE = """
CREATE TABLE bench_raw_observations (
    dataset_id uuid NOT NULL,
    geo        text NOT NULL,
    date       date NOT NULL,
    kpi        double precision NOT NULL,
    spend      double precision,
    PRIMARY KEY (dataset_id, geo, date)
)
"""


def build_panel(geos: int, years: int, seed: int = 7) -> tuple[bytes, list[tuple[str, dt.date, float, float]]]:
    rng = np.random.default_rng(seed)
    start = dt.date(2021, 1, 1)
    days = [start + dt.timedelta(days=k) for k in range(365 * years + years // 4)]
    day_text = [d.isoformat() for d in days]
    rows: list[tuple[str, dt.date, float, float]] = []
    lines = ["date,geo,kpi,spend"]
    for g in range(geos):
        name = f"market_{g:04d}"
        kpi = np.round(rng.gamma(20.0, 50.0, size=len(days)), 2)
        spend = np.round(kpi * 0.05, 2)
        for d, text, k, s in zip(days, day_text, kpi.tolist(), spend.tolist(), strict=True):
            rows.append((name, d, k, s))
            lines.append(f"{text},{name},{k},{s}")
    return ("\n".join(lines) + "\n").encode(), rows


async def time_upload(database_url: str, body: bytes) -> tuple[float, int]:
    settings = replace(settings_from_environment(), database_url=database_url, log_level="WARNING")
    async with AsyncTestClient(app=create_app(settings), timeout=3600) as client:
        client.headers["Authorization"] = f"Bearer {await make_key(database_url, Scope.ADMIN, name='bench')}"
        started = time.perf_counter()
        response = await client.post("/v1/geo/datasets?name=bench", content=body, headers={"Content-Type": "text/csv"})
        elapsed = time.perf_counter() - started
    if response.status_code != 201:
        raise SystemExit(f"upload failed: {response.status_code} {response.text[:500]}")
    row_count: int = response.json()["row_count"]
    return elapsed, row_count


async def time_raw_copy(database_url: str, rows: list[tuple[str, dt.date, float, float]]) -> float:
    dataset_id = uuid.uuid4()
    records = [(dataset_id, *row) for row in rows]
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(RAW_TABLE)
        started = time.perf_counter()
        async with connection.transaction():
            await connection.copy_records_to_table(
                "bench_raw_observations", records=records, columns=["dataset_id", "geo", "date", "kpi", "spend"]
            )
        return time.perf_counter() - started
    finally:
        await connection.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--geos", type=int, default=1000)
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    args = parser.parse_args()
    if not args.database_url:
        raise SystemExit("set DATABASE_URL or pass --database-url")
    body, rows = build_panel(args.geos, args.years)
    async with throwaway_database(args.database_url, "counterfact_bench") as url:
        upload, row_count = await time_upload(url, body)
        raw = await time_raw_copy(url, rows)
    print("| panel | rows | CSV MB | upload (POST text/csv) | raw COPY (records) | ratio |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {args.geos} geos x {args.years} y | {row_count:,} | {len(body) / 1e6:.1f} | {upload:.2f} s "
        f"| {raw:.2f} s | {upload / raw:.2f}x |"
    )


if __name__ == "__main__":
    asyncio.run(main())
