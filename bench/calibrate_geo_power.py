"""Is the designed power of a geo-lift test the rate at which the results' test then detects the effect?

The simulation is :mod:`simulations.geo_power_calibration` (issue 23's process: ``--histories`` histories of
``--history-days`` days, ``--markets`` markets of lognormal sizes, ``--treated`` treated markets nearest the
median, a shared AR(0.9) trend with market loadings, a shared growth of ``--growth`` a day (log scale), a
weekly pattern with market amplitudes, AR(1) noise ``--rho`` proportional to each market's level -- or, with
``--additive-noise``, to its size only); for each history the design's power (``--duration``-day test,
``--lookback`` windows, alpha 5% two-sided), then ``--futures`` fresh futures analysed by the results'
synthetic-control test.  Prints per effect and per bin of predicted power the mean prediction, the realized
rate, its standard error and whether the issue's target holds (3 points + 2 SE per effect, 8 + 2 SE per bin).

Run: ``nice -n 10 .venv/bin/python bench/calibrate_geo_power.py [--histories 150 --futures 3 ...]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulations.geo_power_calibration import Agreement, calibrate_power  # noqa: E402
from simulations.geo_simulation import PanelModel  # noqa: E402


def table(title: str, rows: list[Agreement]) -> None:
    print(f"\n| {title} | n | predicted (mean) | realized | SE | gap | within target |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        gap = r.predicted - r.realized
        print(
            f"| {r.label} | {r.count} | {r.predicted:.3f} | {r.realized:.3f} | {r.standard_error:.3f} | {gap:+.3f} "
            f"| {'yes' if r.within else '**no**'} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--histories", type=int, default=150)
    parser.add_argument("--futures", type=int, default=3)
    parser.add_argument("--history-days", type=int, default=180)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--markets", type=int, default=21)
    parser.add_argument("--treated", type=int, default=1)
    parser.add_argument("--rho", type=float, default=0.3)
    parser.add_argument("--noise-sd", type=float, default=0.15)
    parser.add_argument("--growth", type=float, default=0.003)
    parser.add_argument("--additive-noise", action="store_true")
    parser.add_argument("--lookback", type=int, default=20)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--effects", default="0,0.05,0.1,0.15")
    parser.add_argument("--seed", type=int, default=23)
    args = parser.parse_args()
    model = PanelModel(
        n_markets=args.markets,
        n_treated=args.treated,
        noise_ar=args.rho,
        noise_sd=args.noise_sd,
        growth=args.growth,
        multiplicative_noise=not args.additive_noise,
    )
    start = time.perf_counter()
    result = calibrate_power(
        model,
        history_days=args.history_days,
        duration=args.duration,
        effects=tuple(float(e) for e in args.effects.split(",")),
        histories=args.histories,
        futures=args.futures,
        lookback_windows=args.lookback,
        alpha=args.alpha,
        seed=args.seed,
    )
    print(
        f"{args.histories} histories x {args.futures} futures; {args.history_days} days, {args.markets} markets, "
        f"{args.treated} treated, rho {args.rho:g}, noise sd {args.noise_sd:g}, growth {args.growth:g}/day "
        f"({'additive' if args.additive_noise else 'multiplicative'} noise), {args.duration}-day tests, "
        f"{args.lookback} windows, alpha {args.alpha:g}, seed {args.seed}: {time.perf_counter() - start:.0f} s"
    )
    table("effect", result.by_effect())
    table("predicted power", result.by_bin())


if __name__ == "__main__":
    main()
