"""False positives of the results' geo tests (synthetic control and TBR) on issue 23's process.

Each test: a fresh history of ``--pre-days`` days and a 15-day test period (no effect) from
:func:`simulations.geo_simulation.history_and_futures` (21 markets of lognormal sizes, the one nearest the
median treated -- or ``--treated`` -- a shared AR(0.9) trend, ``--growth`` a day of shared growth, a weekly
pattern, AR(1) noise rho 0.3 with sd 0.15 of the level; a new layout per test).  Synthetic control: the
block p-value of :mod:`stats.geo.conformal` the results report; TBR: :func:`stats.geo.tbr.tbr_conformal_batch`'s
p-value (the results' default interval).  Prints the share with ``p <= 0.05`` and its binomial SE.
``--methods tbr`` skips the synthetic control (the slow part; the panels drawn are the same).

Run: ``nice -n 10 .venv/bin/python bench/calibrate_geo_false_positives.py [--tests 2000 --pre-days 90,180,365]``
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulations.geo_power_calibration import results_p_value  # noqa: E402
from simulations.geo_simulation import PanelModel, history_and_futures  # noqa: E402
from stats.geo.tbr import tbr_conformal_batch  # noqa: E402

ALPHA = 0.05
DURATION = 15


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--pre-days", default="90,180,365")
    parser.add_argument("--treated", type=int, default=1)
    parser.add_argument("--growth", type=float, default=0.003)
    parser.add_argument("--seed", type=int, default=2300)
    parser.add_argument("--methods", default="scm,tbr", help="comma-separated: scm, tbr")
    args = parser.parse_args()
    run_scm = "scm" in args.methods.split(",")
    model = PanelModel(n_markets=21, n_treated=args.treated, noise_ar=0.3, noise_sd=0.15, growth=args.growth)
    print(f"{args.tests} tests per row; 21 markets, {args.treated} treated, growth {args.growth:g}/day, alpha {ALPHA}")
    print("\n| pre-days | SCM false positives (± SE) | TBR false positives (± SE) | seconds |")
    print("|---|---|---|---|")
    for pre_days in (int(p) for p in args.pre_days.split(",")):
        start = time.perf_counter()
        rng = np.random.default_rng(args.seed + pre_days)
        days = pre_days + DURATION
        post = np.arange(days) >= pre_days
        scm = 0
        treated_total = np.empty((args.tests, days))
        control_total = np.empty((args.tests, days))
        for k in range(args.tests):
            markets = model.markets(args.seed * 1000 + pre_days * 10_000 + k)
            draw = history_and_futures(model, markets, pre_days, DURATION, 1, rng)
            panel = np.concatenate([draw.history, draw.futures[0]], axis=1)
            y = panel[markets.treated].mean(axis=0)
            if run_scm:
                scm += results_p_value(y, panel[markets.donors].T, post) <= ALPHA
            treated_total[k] = panel[markets.treated].sum(axis=0)
            control_total[k] = panel[markets.donors].sum(axis=0)
        tbr = tbr_conformal_batch(treated_total, control_total, slice(0, pre_days), slice(pre_days, days), 0.95)
        tbr_rate = float(np.mean(tbr.p_value <= ALPHA))
        se = math.sqrt(ALPHA * (1 - ALPHA) / args.tests)
        scm_cell = f"{scm / args.tests:.3f} (± {se:.3f})" if run_scm else "not run"
        print(
            f"| {pre_days} | {scm_cell} | {tbr_rate:.3f} (± {se:.3f}) | {time.perf_counter() - start:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
