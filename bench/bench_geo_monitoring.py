"""Daily looks at simulated geo tests: the monitored test's error rates against daily fixed-horizon p-values.

For each setting, ``--tests`` seeded panels (21 markets of log-normal sizes, a shared AR(1) trend, weekly
seasonality, AR(1) noise with coefficient ``--rho``; ``--treated`` markets near the median treated; see
simulations/geo_simulation.py) get ``--pre`` pre-period days and ``--days`` test days with a multiplicative
``--effect`` on the treated markets.  Every test is read on every test day, by the synthetic control and by
TBR, three ways:

* ``monitored``: the group-sequential test of :mod:`stats.geo.monitoring` (significant at some look);
* ``daily fixed-horizon``: each day's fixed-horizon p-value <= alpha at some look (GeoLift-style peeking);
* ``final only``: the fixed-horizon p-value on the last day (the test as designed, never peeked at).

With ``--effect 0`` the first column is the false-positive rate the monitoring guarantees (<= alpha) and the
second the inflation peeking causes without it; with an effect, the power of each, the share of monitored
tests stopped before the last day and their mean days to a decision.

    .venv/bin/python bench/bench_geo_monitoring.py --tests 2000 --pre 90 --days 15 --rho 0.3 --treated 1

``--methods tbr`` (or ``synthetic_control``) reads the tests by one method only; the panels are the same.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulations.geo_simulation import PanelModel
from stats.geo.monitoring import monitor_looks, scm_look_p_values, tbr_look_p_values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tests", type=int, default=500)
    parser.add_argument("--pre", type=int, default=90)
    parser.add_argument("--days", type=int, default=15)
    parser.add_argument("--rho", type=float, default=0.3)
    parser.add_argument("--treated", type=int, default=1)
    parser.add_argument("--effect", type=float, default=0.0)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", default="synthetic_control,tbr", help="comma-separated: synthetic_control, tbr")
    args = parser.parse_args()
    model = PanelModel(n_markets=21, n_treated=args.treated, noise_ar=args.rho)
    rng = np.random.default_rng(args.seed)
    methods = tuple(m for m in ("synthetic_control", "tbr") if m in args.methods.split(","))
    monitored = dict.fromkeys(methods, 0)
    daily = dict.fromkeys(methods, 0)
    final = dict.fromkeys(methods, 0)
    early = dict.fromkeys(methods, 0)
    decision_days: dict[str, list[int]] = {m: [] for m in methods}
    started = time.perf_counter()
    for i in range(args.tests):
        markets = model.markets(args.seed * 1_000_003 + i)
        panel = model.panel(markets, args.pre + args.days, rng)
        panel[markets.treated, args.pre :] *= 1.0 + args.effect
        treated_mean = panel[markets.treated].mean(axis=0)
        paths: dict[str, list[float]] = {}
        if "synthetic_control" in methods:
            paths["synthetic_control"] = scm_look_p_values(treated_mean, panel[markets.donors].T, args.pre)
        if "tbr" in methods:
            treated_total, control_total = panel[markets.treated].sum(axis=0), panel[markets.donors].sum(axis=0)
            paths["tbr"] = tbr_look_p_values(treated_total, control_total, args.pre)
        for method, p_values in paths.items():
            reading = monitor_looks(p_values, args.days, alpha=args.alpha)
            if reading.decision_day is not None:
                monitored[method] += 1
                decision_days[method].append(reading.decision_day)
                early[method] += reading.decision_day < args.days
            daily[method] += min(p_values) <= args.alpha
            final[method] += p_values[-1] <= args.alpha
    seconds = time.perf_counter() - started
    n = args.tests
    print(
        f"{n} tests, {args.treated} treated of 21, {args.pre} pre-days, {args.days}-day test, rho {args.rho}, "
        f"effect {args.effect:.1%}, alpha {args.alpha} ({seconds:.0f} s)"
    )
    print("method              monitored   daily fixed-horizon   final only   stopped early   mean days to decision")
    for method in methods:
        rate = monitored[method] / n
        se = np.sqrt(max(rate * (1.0 - rate), 1e-12) / n)
        days = np.mean(decision_days[method]) if decision_days[method] else float("nan")
        print(
            f"{method:18s} {rate:7.1%} ±{se:4.1%} {daily[method] / n:14.1%} {final[method] / n:16.1%} "
            f"{early[method] / n:13.1%} {days:18.1f}"
        )


if __name__ == "__main__":
    main()
