"""Results of a multi-cell geo experiment: every cell estimated against the shared controls, then compared.

Each cell is a single-cell analysis (:mod:`api.results.geo`, same methods and result shape) on the panel
of its own markets and the markets treated by no cell; the cells' iROAS (relative lift when a cell has
no spend) are compared pairwise by :func:`stats.geo.multi_cell.compare_cells`, whose interval accounts for
the controls the cells share.

Each cell's result is then finished by :func:`api.results.geo.compute_geo_results` as a single-cell run
of its markets against the shared controls (:func:`cell_run`): excluded markets, test type and ROI kind,
iROAS over the cell's signed incremental cost (its ``spend``, or the sum of ``spend_change`` over its
markets) and the cool-down effect. The placebo backtest is not run per cell (its re-fits would multiply
the cost by the number of cells): a cell's ``backtest`` and ``residual_autocorrelation`` are null.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import replace
from typing import Literal

import numpy as np

from api.charts.geo_series import cells_chart
from api.experiments.schemas import GeoCell
from api.fields.interval import estimate_of, finite_or_none
from api.geo.schemas import GeoCellComparison, GeoCellResult, GeoResults, MultiCellGeoResults
from api.results.geo_run import GeoRun
from api.results.geo_shapes import from_geo_lift, from_tbr
from api.results.geo_window import GeoWindow
from stats.geo.lift import GeoLiftOptions, estimate_geo_lift
from stats.geo.multi_cell import Compared, ComparedCell, compare_cells, synthetic_control_cell, tbr_cell
from stats.geo.tbr import estimate_tbr
from stats.intervals import Interval


def _cell_window(window: GeoWindow, rows: list[int]) -> GeoWindow:
    return replace(window, panel=window.panel[rows], geos=[window.geos[r] for r in rows], spend=window.spend[rows])


def cell_run(run: GeoRun, cell: GeoCell) -> GeoRun:
    """The multi-cell run seen as the single-cell run of one cell: its markets and the shared controls
    (the panel's other treated markets left out), its cost, no preparation notes (the multi-cell result
    carries them once)."""
    row_of = {g: i for i, g in enumerate(run.window.geos)}
    rows = [row_of[g] for g in [*cell.treatment_markets, *run.controls]]
    cooldown = run.cooldown_window
    return replace(
        run,
        window=_cell_window(run.window, rows),
        treated=list(cell.treatment_markets),
        spend=_spend(cell),
        cells=None,
        notes=(),
        cooldown_window=None if cooldown is None else _cell_window(cooldown, rows),
    )


def _spend(cell: GeoCell) -> float | None:
    return cell.spend if cell.spend is not None and cell.spend > 0 else None


def _estimate_cell(
    run: GeoRun, cell: GeoCell, compared: Compared, seed: int, n_permutations: int, progress: Callable[[float], None]
) -> tuple[GeoResults, ComparedCell]:
    """The cell's single-cell result on its markets plus the shared controls, and its compared quantity."""
    window = run.window
    row_of = {g: i for i, g in enumerate(window.geos)}
    treated_rows = [row_of[g] for g in cell.treatment_markets]
    control_rows = [row_of[g] for g in run.controls]
    sub = _cell_window(window, treated_rows + control_rows)
    treated = list(cell.treatment_markets)
    spend = _spend(cell)
    post = np.arange(window.panel.shape[1]) >= window.post.start
    if run.method == "tbr":
        treated_total = window.panel[treated_rows].sum(axis=0)
        control_total = window.panel[control_rows].sum(axis=0)
        tbr = estimate_tbr(
            treated_total,
            control_total,
            window.pre,
            window.post,
            run.confidence_level,
            spend,
            n_treated_geos=len(treated),
            method=run.interval,
        )
        progress(1.0)
        scale = spend if compared == "iroas" and spend is not None else tbr.counterfactual_total
        result = from_tbr(run.experiment_id, tbr, sub, treated, run.controls)
        return result, tbr_cell(cell.name, treated_total, control_total, post, scale)
    method: Literal["synthetic_control", "augmented_synthetic_control"] = (
        "synthetic_control" if run.method == "synthetic_control" else "augmented_synthetic_control"
    )
    options = GeoLiftOptions(
        method=method, confidence_level=run.confidence_level, seed=seed, n_permutations=n_permutations
    )
    estimate = estimate_geo_lift(
        sub.panel, sub.geos, treated, window.pre, window.post, options, spend=spend, progress=progress
    )
    scale = spend if compared == "iroas" and spend is not None else estimate.counterfactual_total
    compared_cell = synthetic_control_cell(
        cell.name,
        window.panel[treated_rows].mean(axis=0),
        window.panel[control_rows].T,
        post,
        len(treated),
        scale,
        ridge_lambda=estimate.fit.ridge_lambda,
    )
    return from_geo_lift(run.experiment_id, estimate, sub), compared_cell


def _signed(interval: Interval, sign: float) -> Interval:
    """The difference of iROAS over costs of that sign: a spend cut negates it and swaps its bounds."""
    if sign > 0:
        return interval

    def negated(value: float | None) -> float | None:
        return None if value is None else -value

    estimate = negated(interval.estimate)
    assert estimate is not None
    return Interval(estimate, negated(interval.ci_high), negated(interval.ci_low))


def _multi_cell_results(
    run: GeoRun, cells: list[GeoCell], seed: int, n_permutations: int, progress: Callable[[float], None] | None
) -> MultiCellGeoResults:
    report = progress if progress is not None else (lambda _fraction: None)
    without_spend = [c.name for c in cells if _spend(c) is None]
    compared: Compared = "relative_lift" if without_spend else "iroas"
    results: list[GeoCellResult] = []
    compared_cells: list[ComparedCell] = []
    for k, cell in enumerate(cells):

        def cell_progress(fraction: float, k: int = k) -> None:
            report(0.95 * (k + fraction) / len(cells))

        result, compared_cell = _estimate_cell(run, cell, compared, seed, n_permutations, cell_progress)
        results.append(
            GeoCellResult(
                name=cell.name,
                channel=cell.channel or "",
                treatment_markets=list(cell.treatment_markets),
                spend=_spend(cell),
                results=result,
            )
        )
        compared_cells.append(compared_cell)
    post = np.arange(run.window.panel.shape[1]) >= run.window.post.start
    comparisons = compare_cells(compared_cells, post, 1.0 - run.confidence_level)
    sign = -1.0 if run.spend_cut and compared == "iroas" else 1.0  # iROAS over a cut (negative) cost
    report(1.0)
    warnings: list[str] = []
    for c in comparisons:
        low = -math.inf if c.ci_low is None else c.ci_low
        high = math.inf if c.ci_high is None else c.ci_high
        if not low <= c.difference <= high:
            warnings.append(
                f"The interval of {c.first} minus {c.second} does not contain its estimate: the re-fits under each "
                "hypothesised difference move the counterfactuals (as when a cell's own interval misses its "
                "estimate: a poor pre-period fit or an effect that varies over the test); read both with care."
            )
    if without_spend and len(without_spend) < len(cells):
        warnings.append(
            f"Cells {', '.join(without_spend)} have no spend: the cells are compared on relative lift, not iROAS."
        )
    return MultiCellGeoResults(
        experiment_id=run.experiment_id,
        method=results[0].results.method,
        confidence_level=run.confidence_level,
        control_markets=list(run.controls),
        cells=results,
        comparisons=[
            GeoCellComparison(
                first=c.first,
                second=c.second,
                compared=compared,
                difference=estimate_of(_signed(Interval(c.difference, c.ci_low, c.ci_high), sign)),
                p_value=finite_or_none(c.p_value),
                ci_status=c.ci_status,
            )
            for c in comparisons
        ],
        chart=cells_chart(
            [(cell.name, cell.results.series) for cell in results], run.window.dates[run.window.post.start]
        ),
        warnings=warnings,
    )


async def multi_cell_results(
    run: GeoRun,
    cells: list[GeoCell],
    *,
    n_permutations: int,
    seed: int,
    progress: Callable[[float], None] | None = None,
) -> MultiCellGeoResults:
    """Every cell of the loaded run estimated and compared, in a worker thread (the event loop stays free)."""
    return await asyncio.to_thread(_multi_cell_results, run, cells, seed, n_permutations, progress)
