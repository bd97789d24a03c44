"""Full-size calibration of every geo method: 95% interval coverage and false positives per scenario.

The simulation and the analyses are :mod:`simulations.geo_calibration` (the CI version,
``tests/stats/test_geo_calibration.py``, runs fewer replications); this runs every method in every
scenario (AR(1) noise rho in {0, 0.25, 0.5}; 1, 3 and 10 treated markets or pairs) with more
replications and prints a markdown table: coverage of the true effect by the 95% interval (target within
95% +- 2 pp), false-positive rate at alpha = 5% (target <= 7%), each with its binomial standard error.

Run: ``.venv/bin/python bench/calibrate_geo.py [--replications N] [--methods m1,m2]``
(default: 1,000 replications for each method and scenario).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulations.geo_calibration import ALPHA, LEVEL, METHODS, SCENARIOS, calibrate  # noqa: E402

TOLERANCE = 0.02


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replications", type=int, default=1000)
    parser.add_argument("--methods", default=",".join(METHODS))
    args = parser.parse_args()
    print("| method | treated | rho | replications | coverage (95%) | false positives (5%) | within target | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for method in args.methods.split(","):
        for n_treated, rho in SCENARIOS:
            if method == "trimmed_match" and n_treated < 3:
                print(f"| {method} | {n_treated} | {rho:g} | | not applicable: needs at least 3 pairs | | | |")
                continue
            start = time.perf_counter()
            c = calibrate(method, n_treated, rho, args.replications)
            seconds = time.perf_counter() - start
            ok = abs(c.coverage - LEVEL) <= TOLERANCE and c.false_positive_rate <= ALPHA + TOLERANCE
            print(
                f"| {method} | {n_treated} | {rho:g} | {c.replications} | {c.coverage:.3f} "
                f"(± {c.standard_error(LEVEL):.3f}) | {c.false_positive_rate:.3f} (± {c.standard_error(ALPHA):.3f}) "
                f"| {'yes' if ok else '**no**'} | {seconds:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
