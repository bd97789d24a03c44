"""Benchmark the geo-lift numerical core on Meta GeoLift's walkthrough panel (40 geos x 105 days).

Times, on the treated average of chicago and portland against the 38 other cities:

* one synthetic-control fit on the 90 pre-days (target <= 20 ms);
* one ridge-augmented fit (with its cross-validated penalty);
* conformal inference: p-values with 1,000 iid permutations plus the interval inversion
  (target <= 2 s), with block and with iid permutations behind the interval;
* the whole ``estimate_geo_lift`` call (pointwise bands and placebo test included);
* pysyncon's ``Synth`` on the same outcome-only problem (``custom_V`` chosen so its inner QP is
  exactly ours; target: ours at least 50x faster).

Run: ``.venv/bin/python bench/bench_geo.py [--repeat N]``; prints a markdown table (min and median
wall-clock time over the repeats).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.timing import min_and_median  # noqa: E402
from simulations.geolift_data import load_geolift_panel  # noqa: E402
from stats.geo.augmented_synthetic_control import fit_augmented_synthetic_control  # noqa: E402
from stats.geo.conformal import Scheme, conformal_inference  # noqa: E402
from stats.geo.lift import GeoLiftOptions, Method, estimate_geo_lift  # noqa: E402
from stats.geo.synthetic_control import fit_synthetic_control  # noqa: E402


def load_smoking() -> tuple[np.ndarray, np.ndarray] | None:
    """California's cigarette sales 1970-1988 and the 38 donor states' (outcome-only problem)."""
    path = ROOT / "tests" / "data" / "synth" / "smoking.csv"
    if not path.exists():
        return None
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    states = sorted({r["state"] for r in rows})
    years = sorted({int(float(r["year"])) for r in rows if int(float(r["year"])) < 1989})
    si = {s: i for i, s in enumerate(states)}
    yi = {y: i for i, y in enumerate(years)}
    panel = np.full((len(years), len(states)), np.nan)
    for r in rows:
        year = int(float(r["year"]))
        if year in yi:
            panel[yi[year], si[r["state"]]] = float(r["cigsale"])
    ca = si["California"]
    return panel[:, ca], np.delete(panel, ca, axis=1)


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(min, median) wall-clock seconds over ``repeat`` calls, after one warm-up call."""
    fn()
    return min_and_median(fn, repeat)


def fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds < 1.0 else f"{seconds:.2f} s"


Timing = tuple[float, float]


@dataclass(frozen=True)
class Problem:
    """The walkthrough panel, and the treated average of chicago and portland against the 38 other cities."""

    panel: np.ndarray
    geos: list[str]
    y: np.ndarray
    donors: np.ndarray
    post: np.ndarray


@dataclass
class Table:
    """The rows of the markdown table, the speed-ups against pysyncon and the notes printed after it."""

    rows: list[tuple[str, float, float, str]] = field(default_factory=list)
    speedups: list[tuple[str, Timing, Timing]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, name: str, result: Timing, target: str = "") -> Timing:
        self.rows.append((name, result[0], result[1], target))
        return result

    def print(self) -> None:
        print("| case | min | median | target |")
        print("|---|---:|---:|---|")
        for name, best, median, target in self.rows:
            print(f"| {name} | {fmt(best)} | {fmt(median)} | {target} |")
        for label, ours_t, theirs_t in self.speedups:
            fast, typical = theirs_t[0] / ours_t[0], theirs_t[1] / ours_t[1]
            print(f"| speed-up vs pysyncon, {label} | {fast:.0f}x | {typical:.0f}x | >= 50x |")
        for note in self.notes:
            print(f"\n{note}")


def load_problem() -> Problem:
    """GeoLift's panel with chicago and portland treated from day 90."""
    panel, geos = load_geolift_panel()
    treated = [geos.index("chicago"), geos.index("portland")]
    donor_rows = [i for i in range(len(geos)) if i not in treated]
    y = panel[treated].mean(axis=0)
    donors = panel[donor_rows].T
    post = np.arange(panel.shape[1]) >= 90
    return Problem(panel, geos, y, donors, post)


def time_fits(table: Table, problem: Problem, n: int) -> None:
    """Time the synthetic-control and ridge-augmented fits on the 90 pre-days."""
    y, donors = problem.y, problem.donors
    table.add(
        "SCM fit, 38 donors x 90 pre-days (fixed effects)",
        timed(lambda: fit_synthetic_control(y[:90], donors[:90]), n * 5),
        "<= 20 ms",
    )
    table.add("SCM fit, no fixed effects", timed(lambda: fit_synthetic_control(y[:90], donors[:90], False), n * 5))
    table.add(
        "ASCM fit incl. lambda CV (89 folds x 21 lambdas)",
        timed(lambda: fit_augmented_synthetic_control(y[:90], donors[:90]), max(n // 4, 3)),
    )


def time_inference(table: Table, problem: Problem, n: int) -> None:
    """Time conformal inference (both interval schemes, then with pointwise intervals) and the whole estimate."""
    panel, geos, y, donors, post = problem.panel, problem.geos, problem.y, problem.donors, problem.post
    schemes: tuple[Scheme, ...] = ("block", "iid")
    for scheme in schemes:
        inference = partial(
            conformal_inference, y, donors, post, alpha=0.1, n_permutations=1000, scheme=scheme, pointwise=False
        )
        table.add(
            f"conformal: 1,000 iid perms + CI inversion ({scheme} CI)", timed(inference, max(n // 4, 3)), "<= 2 s"
        )
    table.add(
        "conformal incl. 15 pointwise intervals",
        timed(lambda: conformal_inference(y, donors, post, alpha=0.1, n_permutations=1000), 3),
    )
    methods: tuple[Method, ...] = ("synthetic_control", "augmented_synthetic_control")
    for method in methods:
        options = GeoLiftOptions(method=method, confidence_level=0.9)
        estimate = partial(
            estimate_geo_lift, panel, geos, ["chicago", "portland"], slice(0, 90), slice(90, 105), options, spend=1e4
        )
        table.add(f"estimate_geo_lift end to end ({method})", timed(estimate, 3))


def compare_pysyncon(table: Table, problem: Problem, n: int) -> None:
    """Time ours against pysyncon's ``Synth`` on the same outcome-only problems, and compare their weights."""
    try:
        import pandas as pd
        from pysyncon import Synth
    except ImportError:  # pragma: no cover - optional reference
        table.notes.append("pysyncon not installed: comparison skipped")
        return
    y, donors = problem.y, problem.donors
    problems = {
        "GeoLift (38 donors x 90 pre-days, demeaned)": (
            y[:90] - y[:90].mean(),
            donors[:90] - donors[:90].mean(axis=0),
        )
    }
    smoking = load_smoking()
    if smoking is not None:
        problems["smoking (California, 38 donors x 19 pre-years)"] = smoking
    for label, (a, b) in problems.items():
        z0 = pd.DataFrame(b, columns=[f"d{j}" for j in range(b.shape[1])])
        z1 = pd.Series(a, name="treated")
        v = pd.concat([z0, z1], axis=1).std(axis=1).to_numpy() ** 2

        def run_pysyncon(z0: object = z0, z1: object = z1, v: object = v) -> Synth:
            synth = Synth()
            synth.fit(X0=z0, X1=z1, Z0=z0, Z1=z1, custom_V=v)
            return synth

        def run_ours(a: np.ndarray = a, b: np.ndarray = b) -> object:
            return fit_synthetic_control(a, b, False)

        ours_t = table.add(f"ours, {label}", timed(run_ours, n * 5))
        theirs_t = table.add(f"pysyncon Synth (custom_V), {label}", timed(run_pysyncon, 3))
        table.speedups.append((label, ours_t, theirs_t))
        w_ours = fit_synthetic_control(a, b, False).weights
        w_theirs = np.asarray(run_pysyncon().W)
        obj_ours = float(np.sum((a - b @ w_ours) ** 2))
        obj_theirs = float(np.sum((a - b @ w_theirs) ** 2))
        table.notes.append(
            f"{label}: max |w_ours - w_pysyncon| = {np.abs(w_ours - w_theirs).max():.1e}; "
            f"objective ours {obj_ours:.6g} vs pysyncon {obj_theirs:.6g}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="repeats of the fast cases (slow ones use fewer)")
    args = parser.parse_args()
    n = max(args.repeat, 3)
    problem = load_problem()
    table = Table()
    time_fits(table, problem, n)
    time_inference(table, problem, n)
    compare_pysyncon(table, problem, n)
    table.print()


if __name__ == "__main__":
    main()
