"""Everything a geo result is computed from (:class:`GeoRun`), loaded and checked from the experiment's
design and dataset: the request's method, level, interval and missing-data policy, the window, the
treated and control markets, pairs, cells, excluded markets, test type and incremental cost.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

import msgspec

from api.db.database import Connection
from api.experiments.schemas import GeoCell, Period
from api.experiments.stored_design import StoredGeoDesign, stored_geo_design
from api.geo.coverage import not_covered, period_coverage
from api.geo.repository import GeoRepository
from api.geo.schemas import (
    GeoMethod,
)
from api.geo.service import dataset_at
from api.geo_design.planned_effect import planned_effect
from api.http.errors import Conflict, invalid_field
from api.results.geo_trimmed_match import ESTIMATOR_DEFAULT, TrimBound, check_pair_spend, pair_rows, trim_bound_of
from api.results.geo_window import GeoWindow, cooldown_window, load_window, prepared_window, test_window
from stats.geo.panel_gaps import MISSING_POLICIES, MissingPolicy
from stats.geo.tbr import TBR_INTERVAL_KINDS, TBRIntervalKind

METHODS: tuple[GeoMethod, ...] = ("synthetic_control", "augmented_synthetic_control", "tbr", "trimmed_match")
MONITORED_METHODS = ("synthetic_control", "augmented_synthetic_control", "tbr")
UNPAIRED_TRIMMED_MATCH = (
    "trimmed_match needs a paired geo experiment: this experiment has no `pairs` "
    "([treatment_geo, control_geo] per pair); use synthetic_control, augmented_synthetic_control or tbr"
)


def refuse_unpaired_trimmed_match(experiment_row: Any) -> None:
    """400 naming ``method`` when ``trimmed_match`` is asked of a geo experiment without ``pairs`` (checked
    before a results job is queued, and again by the job)."""
    if not stored_geo_design(experiment_row["design"]).pairs:
        raise invalid_field("method", UNPAIRED_TRIMMED_MATCH)


def check_monitorable(method: str, multi_cell: bool) -> None:
    """400 naming ``sequential`` for a method or design that has no daily process to monitor."""
    if method not in MONITORED_METHODS:
        raise invalid_field(
            "sequential",
            "applies to synthetic_control, augmented_synthetic_control and tbr: trimmed match analyses each pair's "
            "test-period totals, one observation per pair, so it has no daily looks to hold to a boundary",
        )
    if multi_cell:
        raise invalid_field("sequential", "is not offered for multi-cell experiments yet: read each cell at its end")


def _cells_with_cost(design: StoredGeoDesign) -> list[GeoCell] | None:
    """The design's cells, each ``spend`` the size of the cell's incremental cost: its own ``spend``, or with
    a test type the sum of ``spend_change`` over its markets (its sign is the run's ``spend_cut``, one for
    every cell as the test type is the experiment's); ``None`` when that is 0 or absent."""
    if design.cells is None:
        return None
    change = design.spend_change or {}
    sized: list[GeoCell] = []
    for cell in design.cells:
        cost = sum(change[g] for g in cell.treatment_markets if g in change) if change else cell.spend
        spend = abs(cost) if cost is not None and cost != 0 else None
        sized.append(msgspec.structs.replace(cell, spend=spend, channel=cell.channel or design.channel))
    return sized


def _excluded_from_controls(design: StoredGeoDesign, geos: list[str], treated: list[str]) -> tuple[str, ...]:
    """The design's ``exclude_from_controls``, checked again against the dataset (400 naming the entry)."""
    known, treated_set = set(geos), set(treated)
    for i, geo in enumerate(design.exclude_from_controls):
        if geo not in known:
            raise invalid_field(f"exclude_from_controls[{i}]", f"{geo!r} is not in the experiment's dataset")
        if geo in treated_set:
            raise invalid_field(f"exclude_from_controls[{i}]", f"{geo!r} is a treatment market")
    return tuple(sorted(set(design.exclude_from_controls)))


def _dates(period: Period) -> tuple[date, date]:
    return period.start, period.end


async def _test_period_read(
    connection: Connection, status: str | None, design: StoredGeoDesign, version: int | None, method: str
) -> tuple[tuple[date, date], int | None]:
    """The test dates a result reads and, when they are only the first part of the test period, how many dates
    the whole period has (``None`` when the result reads it all).

    When the dataset (as of ``version``) ends before the test period does, the test's days are still arriving
    (a gap inside a period the dataset spans is the ``missing`` policy's). A running or stopped experiment whose
    method can be monitored is then read over the days covered so far (an interim result, or a test stopped
    early); otherwise, or before its first day is covered, 409 naming the missing dates.
    """
    test = _dates(design.test_period)
    dataset = await dataset_at(connection, design.dataset_id, version)
    if dataset is None or dataset["last_date"] >= test[1]:
        return test, None
    coverage = await period_coverage(
        connection,
        design.dataset_id,
        dataset["version"],
        treated=design.treatment_markets,
        pairs=design.pairs,
        excluded=design.exclude_from_controls,
        pre=_dates(design.pre_period),
        test=test,
    )
    if coverage is None or coverage.complete:
        return test, None
    readable = status in ("running", "stopped") and method in MONITORED_METHODS and design.cells is None
    if not readable or coverage.covered_through is None:
        raise not_covered(coverage, test)
    return (test[0], coverage.covered_through), coverage.test_dates


async def _reads_latest(connection: Connection, design: StoredGeoDesign, version: int | None) -> bool:
    """Whether a result as of ``version`` reads the dataset's latest version."""
    return version is None or version == await GeoRepository(connection).latest_version(design.dataset_id)


@dataclass(frozen=True)
class GeoRun:
    """Everything a geo result is computed from, loaded from the database: no connection needed after.

    ``window`` is complete (missing market-dates handled under ``missing``); ``notes`` say what that
    preparation did and go into the result's ``warnings``.
    """

    experiment_id: UUID
    method: str
    confidence_level: float
    window: GeoWindow
    treated: list[str]
    controls: list[str]
    spend: float | None
    pairs: list[tuple[str, str]] | None = None
    missing: MissingPolicy = "drop_market"
    notes: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    test_type: str | None = None
    spend_cut: bool = False  # the test cuts spend (holdback, go-dark): incremental cost and iROAS change sign
    cooldown_window: GeoWindow | None = None  # pre-period then cool-down dates, when the test has a cool-down
    interval: TBRIntervalKind = "conformal"
    planned_effect: float | None = None
    trim_rate: float | None = None  # trimmed match's rate fixed by the design; None: chosen from the data
    trim_bound: TrimBound = ESTIMATOR_DEFAULT  # the bound of that choice (a matched-pair design's own, if made of one)
    cells: list[GeoCell] | None = None  # a multi-cell experiment (api/results/geo_cells.py), each with its cost's size
    sequential: bool = False  # read as a group-sequential test with a look every day (api/results/geo_monitoring.py)
    planned_days: int = 0  # dates of the experiment's whole test period (the looks a monitored test plans)
    partial: bool = False  # only the first days of the test period are read (they are all the data has yet)
    closed: bool = False  # stopped, and read on its latest data: a partial read is its final result (stopped early)


async def load_geo_run(
    connection: Connection,
    experiment_row: Any,
    method: str = "synthetic_control",
    confidence_level: float = 0.9,
    missing: str = "drop_market",
    interval: str | None = None,
    sequential: bool | None = None,
    dataset_version: int | None = None,
) -> GeoRun:
    """Validate the request and load the panel window a geo result needs.

    400 for an unknown method or missing-data policy, a confidence level outside (0, 1), treatment
    markets missing from the dataset or ``trimmed_match`` on an experiment without ``pairs``; 409 when
    the dataset does not cover the periods, when a treated market (a pair geo for ``trimmed_match``) has
    no value on a test date and ``missing`` is not ``zero``, when too few controls or pre-period dates
    remain, or (``trimmed_match``) when it has no spend for the pairs' test period. The panel is read as of
    ``dataset_version`` (the latest by default; 400 naming it when the dataset has no such version).
    ``sequential`` on a draft, with ``trimmed_match`` or on a multi-cell experiment is 400 naming it. A running
    or stopped experiment whose test period the data covers only in part is read over the days covered, as a
    sequential result unless ``sequential`` is false (:func:`_test_period_read`).
    """
    policy, tbr_interval = _request_options(method, missing, confidence_level, interval)
    design = stored_geo_design(experiment_row["design"])
    status = experiment_row.get("status")
    _check_sequential(sequential, method, design, status)
    pairs = _design_pairs(design, method)
    experiment_id = UUID(str(experiment_row["id"]))
    treated = list(design.treatment_markets)
    cooldown = _checked_cooldown(design)
    cost = design.incremental_cost
    spend = abs(cost) if cost is not None and cost != 0 else None
    test, planned_dates = await _test_period_read(connection, status, design, dataset_version, method)
    partial = planned_dates is not None
    if partial:
        cooldown = None  # the cool-down follows the whole test
    prepared, window, notes, excluded, controls = await _prepared_markets(
        connection, design, treated, pairs, policy, test, cooldown, dataset_version
    )
    planned = await planned_effect(connection, design.design_source)
    return GeoRun(
        experiment_id,
        method,
        confidence_level,
        window,
        treated,
        controls,
        spend,
        pairs,
        missing=policy,
        notes=tuple(notes),
        excluded=excluded,
        test_type=design.test_type,
        spend_cut=cost is not None and cost < 0,
        cooldown_window=cooldown_window(prepared),
        interval=tbr_interval,
        planned_effect=planned,
        trim_rate=design.trim_rate,
        trim_bound=trim_bound_of(design.design_source),
        cells=_cells_with_cost(design),
        sequential=bool(sequential) or (partial and sequential is None),
        planned_days=planned_dates if planned_dates is not None else window.post.stop - window.post.start,
        partial=partial,
        closed=status == "stopped" and await _reads_latest(connection, design, dataset_version),
    )


def _request_options(
    method: str, missing: str, confidence_level: float, interval: str | None
) -> tuple[MissingPolicy, TBRIntervalKind]:
    """The request's missing-data policy and TBR interval, after checking its method, policy, level and
    interval in that order (400 naming the first one wrong)."""
    if method not in METHODS:
        raise invalid_field("method", f"must be one of {', '.join(METHODS)}")
    if missing not in MISSING_POLICIES:
        raise invalid_field("missing", f"must be one of {', '.join(MISSING_POLICIES)}")
    policy: MissingPolicy = (
        "drop_market" if missing == "drop_market" else "interpolate" if missing == "interpolate" else "zero"
    )
    if not 0.0 < confidence_level < 1.0:
        raise invalid_field("confidence_level", "must be strictly between 0 and 1")
    if interval is not None and method != "tbr":
        raise invalid_field("interval", "chooses TBR's interval: it applies to method=tbr only")
    if interval is not None and interval not in TBR_INTERVAL_KINDS:
        raise invalid_field("interval", f"must be one of {', '.join(TBR_INTERVAL_KINDS)}")
    tbr_interval: TBRIntervalKind = "kerman" if interval == "kerman" else "conformal"
    return policy, tbr_interval


def _check_sequential(sequential: bool | None, method: str, design: StoredGeoDesign, status: str | None) -> None:
    """400 naming ``sequential`` when it is asked for explicitly of a method or design with nothing to
    monitor, or of a draft."""
    if sequential:  # asked for explicitly
        check_monitorable(method, design.cells is not None)
        if status == "draft":
            raise invalid_field(
                "sequential", "the experiment is a draft: its test has not started, so there is no look"
            )


def _design_pairs(design: StoredGeoDesign, method: str) -> list[tuple[str, str]] | None:
    """The design's pairs when the method is ``trimmed_match`` (400 naming ``method`` when it has none)."""
    if method != "trimmed_match":
        return None
    if not design.pairs:
        raise invalid_field("method", UNPAIRED_TRIMMED_MATCH)
    return [(p[0], p[1]) for p in design.pairs]


def _checked_cooldown(design: StoredGeoDesign) -> tuple[date, date] | None:
    """The design's cool-down dates, 400 naming ``cooldown_period`` unless it starts after the test ends."""
    test = _dates(design.test_period)
    cooldown = None if design.cooldown_period is None else _dates(design.cooldown_period)
    if cooldown is not None and (cooldown[0] <= test[1] or cooldown[1] < cooldown[0]):
        raise invalid_field("cooldown_period", "must start after the test period ends and not end before it starts")
    return cooldown


async def _prepared_markets(
    connection: Connection,
    design: StoredGeoDesign,
    treated: list[str],
    pairs: list[tuple[str, str]] | None,
    policy: MissingPolicy,
    test: tuple[date, date],
    cooldown: tuple[date, date] | None,
    dataset_version: int | None,
) -> tuple[GeoWindow, GeoWindow, list[str], tuple[str, ...], list[str]]:
    """The window read and prepared under ``policy`` (with its cool-down, then without), its notes, the
    excluded markets and the controls.

    400 for a pair geo the dataset lacks or when the dataset has fewer than 2 controls; 409 when fewer than
    2 remain after the policy, or (pairs) when the pairs have no test-period spend.
    """
    raw = await load_window(
        connection, design.dataset_id, treated, _dates(design.pre_period), test, cooldown, dataset_version
    )
    excluded = _excluded_from_controls(design, raw.geos, treated)
    if pairs is not None:
        pair_rows(raw, pairs)  # 400 for a pair geo the dataset does not have
        protected, role = {g for pair in pairs for g in pair}, "pair geo"
    else:
        protected, role = set(treated), "treated market"
    prepared, notes = await asyncio.to_thread(prepared_window, raw, protected, set(excluded), policy, role)
    window = test_window(prepared)
    treated_set = set(treated)
    if sum(1 for g in raw.geos if g not in treated_set and g not in excluded) < 2:
        raise invalid_field("treatment_markets", "leaves fewer than 2 control markets in the dataset")
    controls = [g for g in window.geos if g not in treated_set]
    if len(controls) < 2:
        raise Conflict(
            f"Only {len(controls)} control market(s) remain after leaving out those with missing values "
            f"(missing={policy}); at least 2 are needed",
            [("missing", f"leaves {len(controls)} control markets")],
        )
    if pairs is not None:
        check_pair_spend(window, pairs)
    return prepared, window, notes, excluded, controls
