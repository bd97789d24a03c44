"""Benchmark the matched-pair design (trimmed_match's) on its 174-geo design data set (364 days of 2020).

The design colab's settings: holdback, evaluation window 2020-12-02..2020-12-29 (the pairing uses the
rest of the year), matching weights response 1 and spend 0.01, 200 simulated assignments per design,
every number of pairs kept from 87 down to 10 (78 designs).

* ``core``: the numerics alone (``stats.geo.pair_design``) on the per-geo sums: the pairing, then every
  design's RMSE at a 300,000 budget; against the same simulations estimated one by one with
  ``stats.geo.trimmed_match`` (the estimator the reference design calls per simulation; the package's own
  needs a Bazel C++ build), timed on three designs. Prints the designs' figures.
* ``http``: ``POST /v1/geo/matched-pairs`` to the finished job over HTTP with ``--workers`` worker
  processes (budgets 125,000 and 300,000, target iROAS 3, the balanced randomization of every design).

Run:
``.venv/bin/python bench/bench_matched_pairs.py core``
``DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/bench_matched_pairs.py http``
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
import time
from collections import defaultdict
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_geo_design import bench_service, timed_job, workers  # noqa: E402
from stats.geo.pair_design import (  # noqa: E402
    GeoPairing,
    minimum_detectable_iroas,
    pair_deltas,
    pair_geos,
    random_flips,
    simulate_rmse,
)
from stats.geo.trimmed_match import trimmed_match  # noqa: E402
from testkit.panels import pair_design_csv  # noqa: E402

DATA = ROOT / "tests" / "data" / "trimmed_match" / "example_data_for_design.csv"
EVALUATION = ("2020-12-02", "2020-12-29")
SIMULATIONS = 200
BUDGET = 300000.0


def geo_sums() -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Geo names; training (response, spend) sums; evaluation response, evaluation spend, total response."""
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    with DATA.open() as handle:
        for row in csv.DictReader(handle):
            window = "eval" if EVALUATION[0] <= row["date"][:10] <= EVALUATION[1] else "train"
            sums[row["geo"]][f"{window}_response"] += float(row["response"])
            sums[row["geo"]][f"{window}_spend"] += float(row["cost"])
    names = sorted(sums, key=int)

    def column(key: str) -> np.ndarray:
        return np.array([sums[g][key] for g in names])

    training = np.column_stack([column("train_response"), column("train_spend")])
    total = column("train_response") + column("eval_response")
    return names, training, column("eval_response"), column("eval_spend"), total


def pair_sums(kept: GeoPairing, values: np.ndarray) -> np.ndarray:
    return np.column_stack([values[kept.first], values[kept.second]])


def bench_core() -> None:
    names, training, response, spend, total = geo_sums()
    start = time.perf_counter()
    pairing = pair_geos(training, [1.0, 0.01], total, names)
    pairing_seconds = time.perf_counter() - start
    designs = []
    start = time.perf_counter()
    for pairs_kept in range(pairing.size, 9, -1):
        kept = pairing.kept(pairs_kept)
        flips = random_flips(np.random.default_rng([2020, pairs_kept]), SIMULATIONS, pairs_kept)
        run = simulate_rmse(pair_sums(kept, response), pair_sums(kept, spend), flips, "holdback", BUDGET)
        share = pair_sums(kept, spend).sum() / spend.sum()
        designs.append((pairs_kept, run.rmse, run.rmse_std, run.rmse / share, run.trim_rate))
    design_seconds = time.perf_counter() - start
    print(f"pairing {len(names)} geos into {pairing.size} pairs: {pairing_seconds * 1000:.1f} ms")
    print(
        f"{len(designs)} designs x {SIMULATIONS} simulations (10..{pairing.size} pairs kept, budget {BUDGET:,.0f}): "
        f"{design_seconds:.2f} s"
    )
    vectorized = row_by_row = 0.0
    for pairs_kept in (87, 47, 10):
        kept = pairing.kept(pairs_kept)
        flips = random_flips(np.random.default_rng([2020, pairs_kept]), SIMULATIONS, pairs_kept)
        start = time.perf_counter()
        fast = simulate_rmse(pair_sums(kept, response), pair_sums(kept, spend), flips, "holdback", BUDGET)
        vectorized += time.perf_counter() - start
        start = time.perf_counter()
        y, x = pair_deltas(pair_sums(kept, response), pair_sums(kept, spend), flips, "holdback", BUDGET)
        slow = np.array([trimmed_match(y[r], x[r], 0.8, max_trim_rate=0.10).estimate for r in range(SIMULATIONS)])
        row_by_row += time.perf_counter() - start
        assert np.allclose(fast.estimates, slow, rtol=1e-9, atol=1e-12)
    print(
        f"designs keeping 87, 47 and 10 pairs: vectorized {vectorized:.2f} s, row by row with stats.geo.trimmed_match "
        f"{row_by_row:.2f} s ({row_by_row / vectorized:.0f}x), same estimates"
    )
    best = min(designs, key=lambda d: d[3])
    print("\n| pairs kept | RMSE at 300k | ± | min. detectable iROAS (10%, 80%) | mean trim rate |")
    print("|---|---|---|---|---|")
    for pairs_kept, rmse, rmse_std, _, trim in designs:
        if pairs_kept in (87, 80, 70, 60, 50, 40, 30, 20, 10) or pairs_kept == best[0]:
            mdi = minimum_detectable_iroas(rmse, 0.1, 0.8)
            mark = " (recommended)" if pairs_kept == best[0] else ""
            print(f"| {pairs_kept}{mark} | {rmse:.4f} | {rmse_std:.4f} | {mdi:.3f} | {trim:.3f} |")


def bench_http(client: httpx.Client, dataset_id: str, count: int) -> None:
    body = {
        "dataset_id": dataset_id,
        "budgets": [125000, 300000],
        "target_iroas": 3.0,
        "evaluation_period": {"start": EVALUATION[0], "end": EVALUATION[1]},
        "seed": 2020,
    }
    job, elapsed = timed_job(client, "/v1/geo/matched-pairs", body)
    result = job.get("result") or {}
    designs = {d["pairs_kept"]: d for d in result.get("designs", [])}
    best = designs.get(result.get("recommended"))
    summary = ""
    if best is not None:
        at = best["budgets"][1]
        summary = (
            f"; recommended {best['pairs_kept']} pairs: RMSE {at['rmse']:.4f} at 300k, minimum detectable iROAS "
            f"{at['minimum_detectable_iroas']:.3f}, budget for iROAS 3: {at['budget_for_target_iroas']:,.0f}"
        )
    print(
        f"POST /v1/geo/matched-pairs to finished job with {count} worker(s): {elapsed:.2f} s, status {job['status']}, "
        f"{len(designs)} designs{summary}"
    )


async def main_http(args: argparse.Namespace) -> None:
    async with bench_service(args.database_url) as (database_url, client):
        upload = client.post("/v1/geo/datasets", content=pair_design_csv(), headers={"Content-Type": "text/csv"})
        upload.raise_for_status()
        with workers(database_url, args.workers):
            bench_http(client, str(upload.json()["id"]), args.workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["core", "http"])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    if args.mode == "core":
        bench_core()
    else:
        asyncio.run(main_http(args))


if __name__ == "__main__":
    main()
