"""Benchmark the backtest every geo result carries (``api.backtests.service.result_backtest``).

On Meta GeoLift's walkthrough panel (40 cities, 90 pre-period days, a 15-day test, chicago + portland
treated) and on trimmed_match's post-analysis panel (``example_data_for_post_analysis.csv``: 114 geos in
57 pairs, 308 pre-period days, the colab's 28-day test and spend): the whole backtest of a result -- its own
method and every other allowed one on the same placebo windows (synthetic control, ridge-augmented SCM
with its cross-validated penalty, TBR, and trimmed match for a paired design), 20 windows, no effect and
the planned effect -- and each method's share of it.

Run: ``.venv/bin/python bench/bench_geo_backtest.py [--repeat N]``; prints a markdown table (min and
median wall-clock time over the repeats).
"""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import date, timedelta
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.backtests.service import BacktestInput, method_analyses, result_backtest  # noqa: E402
from bench.timing import min_and_median  # noqa: E402
from simulations.geolift_data import load_geolift_panel  # noqa: E402
from stats.geo.backtest import WindowAnalysis, backtest  # noqa: E402


def geolift_input() -> BacktestInput:
    panel, geos = load_geolift_panel()
    dates = [date(2021, 1, 1) + timedelta(days=i) for i in range(panel.shape[1])]
    treated = ["chicago", "portland"]
    return BacktestInput(
        panel=panel,
        geos=list(geos),
        dates=dates,
        pre=slice(0, 90),
        post=slice(90, 105),
        treated=treated,
        controls=[g for g in geos if g not in treated],
        pairs=None,
        pair_spend_delta=None,
        method="synthetic_control",
        interval="conformal",
        planned_effect=0.05,
    )


def trimmed_match_input() -> BacktestInput:
    """trimmed_match's post-analysis colab panel: 114 geos, 57 pairs, 2020-11-04..12-01 the test, the days before."""
    path = ROOT / "tests" / "data" / "trimmed_match" / "example_data_for_post_analysis.csv"
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    geos = sorted({r["geo"] for r in rows})
    days = sorted({r["date"] for r in rows})
    g_index, d_index = {g: i for i, g in enumerate(geos)}, {d: i for i, d in enumerate(days)}
    panel = np.zeros((len(geos), len(days)))
    spend = np.zeros((len(geos), len(days)))
    by_pair: dict[str, dict[str, str]] = {}
    for r in rows:
        panel[g_index[r["geo"]], d_index[r["date"]]] = float(r["response"])
        spend[g_index[r["geo"]], d_index[r["date"]]] = float(r["cost"])
        by_pair.setdefault(r["pair"], {})[r["assignment"]] = r["geo"]
    pairs = [(p["1"], p["2"]) for p in by_pair.values()]
    start = next(i for i, day in enumerate(days) if day.startswith("2020-11-04"))  # the colab's test period
    n, d = start + 28, 28
    panel, spend = panel[:, :n], spend[:, :n]
    test_spend = spend[:, n - d :].sum(axis=1)
    spend_delta = np.array([test_spend[g_index[t]] - test_spend[g_index[c]] for t, c in pairs])
    treated = {t for t, _ in pairs}
    return BacktestInput(
        panel=panel,
        geos=geos,
        dates=[date.fromisoformat(days[0][:10]) + timedelta(days=i) for i in range(n)],
        pre=slice(0, n - d),
        post=slice(n - d, n),
        treated=sorted(treated),
        controls=[g for g in geos if g not in treated],
        pairs=pairs,
        pair_spend_delta=spend_delta,
        method="trimmed_match",
        interval="conformal",
        planned_effect=0.05,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print("| panel | what | min | median |")
    print("|---|---|---|---|")
    panels = (
        ("GeoLift walkthrough, 40 x 105", geolift_input()),
        ("trimmed_match colab, 114 x 336, 57 pairs", trimmed_match_input()),
    )
    for label, data in panels:
        low, mid = min_and_median(partial(result_backtest, data, 0.1, 0.05, "planned"), args.repeat)
        print(f"| {label} | whole result backtest | {low * 1e3:.0f} ms | {mid * 1e3:.0f} ms |")
        duration = data.post.stop - data.post.start
        n_pre = data.pre.stop - data.pre.start
        for method, analysis in method_analyses(data, 0.1, duration).items():

            def run(a: WindowAnalysis = analysis, m: str = method, n: int = n_pre, d: int = duration) -> object:
                return backtest(n, d, a, method=m, effect=0.05, alpha=0.1)

            low, mid = min_and_median(run, args.repeat)
            print(f"| {label} | {method} windows | {low * 1e3:.0f} ms | {mid * 1e3:.0f} ms |")


if __name__ == "__main__":
    main()
