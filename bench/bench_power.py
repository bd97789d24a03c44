"""Time Counterfact's sample-size solves against the statsmodels calls they reproduce.

Run: ``.venv/bin/python bench/bench_power.py`` (``make bench``). Prints a markdown table of CPU time
per call (``time.process_time``: other processes do not count), each the best of many ``timeit``
repeats, ours and statsmodels' interleaved. Both sides of a row are timed in batches of the same
length (about twice one statsmodels call): on a busy virtual machine a batch longer than ~1 ms also
pays for cache and host interference, so unequal batches would flatter whichever side ran shorter.

The speed-up targets (proportions ≥ 20x, means ≥ 5x) apply to the solver functions; the
``solve_holdout_design`` rows show what validation, rounding, the achieved-power check, warnings
and the result objects add on top. Exits non-zero if a target is missed or an answer differs from
statsmodels.
"""

from __future__ import annotations

import math
import sys
import time
import timeit
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from statsmodels.stats.power import TTestIndPower
from statsmodels.stats.proportion import samplesize_proportions_2indep_onetail

from stats.power import (
    HoldoutDesignProblem,
    MeanMetric,
    ProportionMetric,
    sample_size_two_means,
    sample_size_two_proportions,
    solve_holdout_design,
)

REPEATS = 30

# A 5% conversion rate, +10% relative lift, 10% holdout, alpha 0.05 two-sided, power 0.8.
BASELINE, MDE, HOLDOUT = 0.05, 0.005, 0.1
RATIO = HOLDOUT / (1 - HOLDOUT)
# Revenue per user: mean 20, sd 50, +5% lift (d = 0.02), same split.
MEAN_MDE, STD_DEV = 1.0, 50.0


@dataclass(frozen=True)
class Case:
    name: str
    ours: Callable[[], object]
    reference: Callable[[], object]
    target: float | None  # minimum speed-up, or None for an informational row


def reference_mean_solve() -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(
            TTestIndPower().solve_power(effect_size=MEAN_MDE / STD_DEV, nobs1=None, alpha=0.05, power=0.8, ratio=RATIO)
        )


def reference_proportion_solve() -> float:
    return float(samplesize_proportions_2indep_onetail(MDE, BASELINE, 0.8, ratio=RATIO, alpha=0.05))


PROPORTION_PROBLEM = HoldoutDesignProblem(
    metric=ProportionMetric(BASELINE), solve_for="sample_size", mde_absolute=MDE, holdout_fraction=HOLDOUT
)
MEAN_PROBLEM = HoldoutDesignProblem(
    metric=MeanMetric(baseline=20.0, std_dev=STD_DEV),
    solve_for="sample_size",
    mde_absolute=MEAN_MDE,
    holdout_fraction=HOLDOUT,
)

CASES = (
    Case(
        "proportion n: `sample_size_two_proportions` vs `samplesize_proportions_2indep_onetail`",
        lambda: sample_size_two_proportions(BASELINE, MDE, 0.8, 0.05, HOLDOUT),
        reference_proportion_solve,
        100.0,
    ),
    Case(
        "proportion n: `solve_holdout_design` (validation, rounding, achieved power, warnings)",
        lambda: solve_holdout_design(PROPORTION_PROBLEM),
        reference_proportion_solve,
        None,
    ),
    Case(
        "mean n: `sample_size_two_means` vs `TTestIndPower().solve_power`",
        lambda: sample_size_two_means(MEAN_MDE, STD_DEV, 0.8, 0.05, HOLDOUT),
        reference_mean_solve,
        5.0,
    ),
    Case(
        "mean n: `solve_holdout_design` (validation, rounding, achieved power, warnings)",
        lambda: solve_holdout_design(MEAN_PROBLEM),
        reference_mean_solve,
        None,
    ),
)


def check_answers() -> None:
    """The timed calls must give statsmodels' answers (to 1e-6) before their speed means anything."""
    ours_p = sample_size_two_proportions(BASELINE, MDE, 0.8, 0.05, HOLDOUT)[0]
    ours_m = sample_size_two_means(MEAN_MDE, STD_DEV, 0.8, 0.05, HOLDOUT)[0]
    for ours, theirs in ((ours_p, reference_proportion_solve()), (ours_m, reference_mean_solve())):
        if not math.isclose(ours, theirs, rel_tol=1e-6):
            sys.exit(f"answer differs from statsmodels: {ours} vs {theirs}")


def cpu_seconds(function: Callable[[], object], number: int) -> float:
    return timeit.timeit(function, number=number, timer=time.process_time) / number


def best_microseconds(case: Case) -> tuple[float, float]:
    """Best CPU time per call of ours and of statsmodels, in batches of equal length."""
    reference_once = min(cpu_seconds(case.reference, 1) for _ in range(5))
    ours_once = max(min(cpu_seconds(case.ours, 10) for _ in range(5)), 1e-8)
    batch = max(2.0 * reference_once, 2e-4)
    n_ours = max(1, round(batch / ours_once))
    n_reference = max(1, round(batch / reference_once))
    repeats = max(REPEATS, min(200, round(0.5 / batch)))
    best_ours = best_reference = math.inf
    for _ in range(repeats):
        best_ours = min(best_ours, cpu_seconds(case.ours, n_ours))
        best_reference = min(best_reference, cpu_seconds(case.reference, n_reference))
    return best_ours * 1e6, best_reference * 1e6


def main() -> int:
    check_answers()
    print("| case | ours (µs) | statsmodels (µs) | speed-up | target |")
    print("|---|---:|---:|---:|---:|")
    missed = 0
    for case in CASES:
        ours, theirs = best_microseconds(case)
        speed_up = theirs / ours
        if case.target is not None:
            missed += speed_up < case.target
        target = "—" if case.target is None else f"≥{case.target:.0f}x"
        print(f"| {case.name} | {ours:.2f} | {theirs:.1f} | {speed_up:.0f}x | {target} |", flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
