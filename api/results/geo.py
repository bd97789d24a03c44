"""Results of a geo experiment: load its panel window, run the estimator off the loop, shape the answer.

The results service (:mod:`api.results.service`) calls :func:`api.results.geo_run.load_geo_run` on a connection, then
:func:`compute_geo_results` without one, for a ``geo`` experiment.
Methods: ``synthetic_control`` and ``augmented_synthetic_control`` (:func:`stats.geo.lift.estimate_geo_lift`,
conformal inference), ``tbr`` (:func:`stats.geo.tbr.estimate_tbr`, the treated markets' sum regressed on
the sum of every other market) and, for experiments with matched ``pairs``, ``trimmed_match``
(:func:`stats.geo.trimmed_match.trimmed_match` on each pair's treatment-minus-control KPI and spend summed
over the test period).

Missing market-dates are handled before any estimator runs, under the request's ``missing`` policy
(:mod:`api.geo.preparation`, :mod:`stats.geo.panel_gaps`; default ``drop_market``, which invents no value).
TBR then regresses the per-date sum of the treated markets on the per-date sum of the controls, so
``missing=zero`` is exactly Google's matched_markets convention (an absent row adds nothing to its
group's sum) and reproduces its published figures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Literal

import msgspec
import numpy as np

from api.backtests.service import BacktestInput
from api.experiments.schemas import GeoCell
from api.fields.interval import Interval
from api.geo.schemas import (
    GeoCooldownEffect,
    GeoResults,
    MultiCellGeoResults,
)
from api.results.geo_backtest import complete_result
from api.results.geo_cells import cell_run, multi_cell_results
from api.results.geo_monitoring import monitored_reading
from api.results.geo_run import GeoRun
from api.results.geo_shapes import from_geo_lift, from_tbr
from api.results.geo_trimmed_match import pair_deltas, trimmed_match_lagged, trimmed_match_results
from stats.geo.lift import GeoLiftOptions, estimate_geo_lift
from stats.geo.tbr import estimate_tbr

DEFAULT_PERMUTATIONS = 1000


def _backtest_input(run: GeoRun) -> BacktestInput:
    window = run.window
    pair_spend_delta = None
    if run.pairs is not None:
        pair_spend_delta = pair_deltas(window, run.pairs)[1]
    return BacktestInput(
        panel=window.panel,
        geos=window.geos,
        dates=window.dates,
        pre=window.pre,
        post=window.post,
        treated=run.treated,
        controls=run.controls,
        pairs=run.pairs,
        pair_spend_delta=pair_spend_delta,
        method=run.method,
        interval=run.interval,
        planned_effect=run.planned_effect,
        trim_rate=run.trim_rate,
        max_trim_rate=run.trim_bound.max_trim_rate,
    )


async def compute_geo_results(
    run: GeoRun,
    *,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
) -> GeoResults | MultiCellGeoResults:
    """Estimate the lift of a loaded geo run, then its backtest, in worker threads (the event loop stays
    free), with what the data preparation did added to its ``warnings``.

    A multi-cell run (``run.cells``) gives each cell's result (:mod:`api.results.geo_cells`) the same treatment as
    a single-cell one (excluded markets, test type, signed iROAS, cool-down) except the backtest, with
    what the data preparation did in the multi-cell ``warnings``."""
    version = run.window.dataset_version
    if run.cells is not None:
        cells = await _multi_cell_run(run, run.cells, n_permutations=n_permutations, seed=seed, progress=progress)
        return msgspec.structs.replace(cells, dataset_version=version)
    result = await _estimate_run(run, n_permutations=n_permutations, seed=seed, progress=progress)
    estimated = await _post_processed(run, result, n_permutations=n_permutations, seed=seed)
    if run.sequential:
        monitoring = await asyncio.to_thread(monitored_reading, run, estimated, run.planned_days)
        estimated = msgspec.structs.replace(estimated, monitoring=monitoring)
    completed = await asyncio.to_thread(complete_result, estimated, _backtest_input(run))
    return msgspec.structs.replace(
        completed, dataset_version=version, interim=run.partial and not run.closed, final=not run.partial or run.closed
    )


async def _multi_cell_run(
    run: GeoRun,
    cells: list[GeoCell],
    *,
    n_permutations: int,
    seed: int,
    progress: Callable[[float], None] | None,
) -> MultiCellGeoResults:
    """Every cell estimated and compared, each cell's result post-processed as a single-cell run of its
    markets against the shared controls (no backtest per cell: see :class:`MultiCellGeoResults`)."""

    result = await multi_cell_results(run, cells, n_permutations=n_permutations, seed=seed, progress=progress)
    finished = [
        msgspec.structs.replace(
            cell,
            results=await _post_processed(cell_run(run, spec), cell.results, n_permutations=n_permutations, seed=seed),
        )
        for spec, cell in zip(cells, result.cells, strict=True)
    ]
    return msgspec.structs.replace(result, cells=finished, warnings=[*run.notes, *result.warnings])


async def _post_processed(run: GeoRun, result: GeoResults, *, n_permutations: int, seed: int) -> GeoResults:
    """The estimate with ``run.notes`` in its warnings, the excluded markets, the test type and ROI kind,
    iROAS over the signed incremental cost and the cool-down effect (no backtest)."""
    roi_kind: Literal["average", "marginal"] = "marginal" if run.test_type == "heavy-up" else "average"
    fit = {**result.fit, "roi_kind": roi_kind} if "roi_kind" in result.fit else result.fit
    iroas = _signed_iroas(result.iroas, run) if run.method != "trimmed_match" else result.iroas
    cooldown = None
    warnings = [*run.notes, *result.warnings]
    if run.cooldown_window is not None:
        cooldown = await _cooldown_effect(run, result, n_permutations=n_permutations, seed=seed)
        if cooldown.p_value is not None and cooldown.p_value <= 1.0 - run.confidence_level:
            warnings.append(
                "The effect persists into the cool-down (its interval excludes 0): the test-period iROAS "
                "understates the return; `cooldown.total_incremental` adds the lagged effect."
            )
    return msgspec.structs.replace(
        result,
        iroas=iroas,
        fit=fit,
        warnings=warnings,
        excluded_from_controls=list(run.excluded),
        test_type=_test_type(run.test_type),
        roi_kind=roi_kind,
        cooldown=cooldown,
    )


def _test_type(value: str | None) -> Literal["holdback", "go-dark", "heavy-up"] | None:
    return "holdback" if value == "holdback" else "go-dark" if value == "go-dark" else "heavy-up" if value else None


def _signed_iroas(iroas: Interval | None, run: GeoRun) -> Interval | None:
    """iROAS over the signed incremental cost: a test that cuts spend divides by a negative cost, so the
    estimator's iROAS over the cost's size changes sign and its bounds swap."""
    if iroas is None or not run.spend_cut:
        return iroas

    def negated(value: float | None) -> float | None:
        return None if value is None else -value

    return Interval(estimate=negated(iroas.estimate), ci_low=negated(iroas.ci_high), ci_high=negated(iroas.ci_low))


async def _cooldown_effect(run: GeoRun, test: GeoResults, *, n_permutations: int, seed: int) -> GeoCooldownEffect:
    """The lagged effect over the cool-down: the same method with the cool-down dates as its test period
    (trimmed match: the pairs' cool-down KPI deltas against their test-period spend deltas)."""
    window = run.cooldown_window
    assert window is not None
    if run.method == "trimmed_match" and run.pairs is not None:
        lagged = await asyncio.to_thread(
            trimmed_match_lagged,
            run.experiment_id,
            run.window,
            window,
            run.pairs,
            run.confidence_level,
            run.trim_rate,
            run.trim_bound,
        )
    else:
        sub = replace(run, window=window, cooldown_window=None)
        lagged = await _estimate_run(sub, n_permutations=n_permutations, seed=seed)
    iroas = lagged.iroas if run.method == "trimmed_match" else _signed_iroas(lagged.iroas, run)
    both = (test.incremental.estimate, lagged.incremental.estimate)
    return GeoCooldownEffect(
        start=window.dates[window.post.start],
        end=window.dates[window.post.stop - 1],
        n_periods=window.post.stop - window.post.start,
        att=lagged.att,
        incremental=lagged.incremental,
        relative=lagged.lift.relative,
        p_value=lagged.p_value,
        iroas=iroas,
        total_incremental=None if None in both else float(sum(v for v in both if v is not None)),
    )


async def _estimate_run(
    run: GeoRun,
    *,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
) -> GeoResults:
    window, treated, controls = run.window, run.treated, run.controls
    if run.method == "trimmed_match" and run.pairs is not None:
        pairs = run.pairs
        return await asyncio.to_thread(
            trimmed_match_results,
            run.experiment_id,
            window,
            pairs,
            run.confidence_level,
            None,
            run.trim_rate,
            run.trim_bound,
        )
    if run.method == "tbr":
        treated_set = set(treated)
        rows = np.array([i for i, g in enumerate(window.geos) if g in treated_set])
        others = np.array([i for i, g in enumerate(window.geos) if g not in treated_set])
        tbr = await asyncio.to_thread(
            estimate_tbr,
            window.panel[rows].sum(axis=0),
            window.panel[others].sum(axis=0),
            window.pre,
            window.post,
            run.confidence_level,
            run.spend,
            n_treated_geos=len(treated),
            method=run.interval,
        )
        return from_tbr(run.experiment_id, tbr, window, treated, controls)

    geo_method: Literal["synthetic_control", "augmented_synthetic_control"] = (
        "synthetic_control" if run.method == "synthetic_control" else "augmented_synthetic_control"
    )
    estimate = await asyncio.to_thread(
        lambda: estimate_geo_lift(
            window.panel,
            window.geos,
            treated,
            window.pre,
            window.post,
            GeoLiftOptions(
                method=geo_method, confidence_level=run.confidence_level, seed=seed, n_permutations=n_permutations
            ),
            spend=run.spend,
            progress=progress,
        )
    )
    return from_geo_lift(run.experiment_id, estimate, window)
