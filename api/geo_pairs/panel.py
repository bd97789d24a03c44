"""What a matched-pair design reads of a stored geo panel: per-geo sums over its windows, checked.

The design needs no daily series: each geo's response and spend summed over the training days, over
the evaluation window, and its response over the latest window of the same length (the sign test's),
all computed in SQL. Everything a request can get wrong about the panel is refused here, before a
job is queued: 404 unknown dataset, 400 naming the field (periods, too short a history, unknown or
excluded geos, bad pairs, numbers of pairs), 409 for geos with missing dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from uuid import UUID

import numpy as np
from numpy.typing import NDArray

from api.db.database import Connection
from api.geo.markets import MarketNames
from api.geo.service import dataset_at
from api.geo_design.panel import refuse_zero_kpi
from api.geo_design.schemas import HistoryPeriod
from api.geo_pairs.repository import PairDesignRepository, Row
from api.geo_pairs.schemas import MatchedPairsRequest
from api.http.errors import Conflict, NotFound, invalid_field

FloatArray = NDArray[np.float64]
DEFAULT_EVALUATION_DAYS = 28  # the design colab's default: the most recent 4 weeks
RECOMMENDED_MIN_PAIRS = 10  # the package's minimum; fewer is allowed when asked for
MIN_PAIRS = 3  # trimmed match needs 3
LISTED = 5


@dataclass(frozen=True)
class PairPanel:
    """Per-geo sums of the design's geos (sorted by name), its windows and its spend proxy."""

    dataset_id: UUID
    dataset_version: int
    geos: tuple[str, ...]
    training_response: FloatArray
    training_spend: FloatArray
    evaluation_response: FloatArray
    evaluation_spend: FloatArray
    latest_response: FloatArray
    pre_period: HistoryPeriod
    evaluation_period: HistoryPeriod
    training_days: int
    evaluation_days: int
    spend_proxy: str
    excluded: tuple[str, ...]
    given_pairs: tuple[tuple[int, int], ...] | None
    pair_counts: tuple[int, ...]

    @property
    def total_response(self) -> FloatArray:
        return np.asarray(self.training_response + self.evaluation_response, dtype=np.float64)


def _periods(request: MatchedPairsRequest, first: date, last: date) -> tuple[HistoryPeriod, HistoryPeriod]:
    pre = request.pre_period or HistoryPeriod(start=first, end=last)
    if pre.start > pre.end:
        raise invalid_field("pre_period", "start must not be after end")
    if pre.start < first or pre.end > last:
        raise invalid_field("pre_period", f"must lie within the dataset's dates {first}..{last}")
    evaluation = request.evaluation_period or HistoryPeriod(
        start=max(pre.start, pre.end - timedelta(days=DEFAULT_EVALUATION_DAYS - 1)), end=pre.end
    )
    if evaluation.start > evaluation.end:
        raise invalid_field("evaluation_period", "start must not be after end")
    if evaluation.start < pre.start or evaluation.end > pre.end:
        raise invalid_field("evaluation_period", f"must lie within the pre-period {pre.start}..{pre.end}")
    return pre, evaluation


def _design_geos(request: MatchedPairsRequest, known: list[str]) -> tuple[list[str], list[str]]:
    excluded = sorted(set(MarketNames(known, request.dataset_id).resolve("exclude", request.exclude)))
    return [g for g in sorted(known) if g not in set(excluded)], excluded


def _given_pairs(request: MatchedPairsRequest, geos: list[str], excluded: list[str]) -> tuple[tuple[int, int], ...]:
    index = {g: i for i, g in enumerate(geos)}
    names = MarketNames([*geos, *excluded], request.dataset_id)
    pairs: list[tuple[int, int]] = []
    for i, pair in enumerate(request.pairs or []):
        spelt = [names.resolve(f"pairs[{i}][{j}]", [geo])[0] for j, geo in enumerate(pair)]
        for j, geo in enumerate(spelt):
            if geo in excluded:
                raise invalid_field(f"pairs[{i}][{j}]", f"{geo!r} is also in `exclude`")
        pairs.append((index[spelt[0]], index[spelt[1]]))
    return tuple(pairs)


def _pair_counts(request: MatchedPairsRequest, available: int) -> tuple[int, ...]:
    field = "pairs" if request.pairs is not None else "exclude"
    if available < MIN_PAIRS:
        raise invalid_field(field, f"leaves {available} pairs; trimmed match needs at least {MIN_PAIRS}")
    if request.pair_counts:
        too_many = [n for n in request.pair_counts if n > available]
        if too_many:
            raise invalid_field("pair_counts", f"asks for {max(too_many)} pairs; the design has {available}")
        return tuple(sorted(set(request.pair_counts), reverse=True))
    if request.pairs is not None or available < RECOMMENDED_MIN_PAIRS:
        return (available,)
    return tuple(range(available, RECOMMENDED_MIN_PAIRS - 1, -1))


def _refuse_gaps(rows: list[Row], geos: list[str], dates: int, pre: HistoryPeriod) -> None:
    present = {row["geo"]: row["days"] for row in rows}
    holed = [(g, dates - present.get(g, 0)) for g in geos if present.get(g, 0) < dates]
    if holed:
        listed = ", ".join(f"{g} ({missing} missing)" for g, missing in holed[:LISTED])
        raise Conflict(
            f"{len(holed)} geos lack values on some of the {dates} dates of the pre-period {pre.start}..{pre.end} "
            f"(for example {listed}); a design sums every geo over the same days: list them in `exclude` or "
            "choose a `pre_period` without the gaps",
            [("exclude", f"geos with missing dates: {', '.join(g for g, _ in holed[:LISTED])}")],
        )


def _column(rows: dict[str, Row], geos: list[str], name: str) -> FloatArray:
    return np.array([float(rows[g][name]) for g in geos], dtype=np.float64)


async def load_pair_panel(connection: Connection, request: MatchedPairsRequest) -> PairPanel:
    """The checked per-geo sums the request's design needs (errors as the module docstring says)."""
    dataset = await dataset_at(connection, request.dataset_id, request.dataset_version)
    if dataset is None:
        raise NotFound(f"No geo dataset with id {request.dataset_id}")
    if not request.budgets and request.target_iroas is None:
        raise invalid_field("budgets", "give the budgets to evaluate, a target_iroas, or both")
    pre, evaluation = _periods(request, dataset["first_date"], dataset["last_date"])
    repository = PairDesignRepository(connection)
    version: int = dataset["version"]
    dates = await repository.window_dates(request.dataset_id, pre.start, pre.end, version)
    evaluation_days = sum(evaluation.start <= d <= evaluation.end for d in dates)
    training_days = len(dates) - evaluation_days
    if evaluation_days == 0:
        raise invalid_field("evaluation_period", "holds none of the dataset's dates")
    if training_days < evaluation_days:
        raise invalid_field(
            "pre_period",
            f"too short a history: {training_days} dates outside the evaluation window to pair the geos on, "
            f"fewer than its {evaluation_days}",
        )
    geos, excluded = _design_geos(request, list(dataset["geos"]))
    given = _given_pairs(request, geos, excluded) if request.pairs is not None else None
    latest_start = dates[-evaluation_days]
    rows = await repository.geo_sums(
        request.dataset_id, (pre.start, pre.end), (evaluation.start, evaluation.end), latest_start, version
    )
    _refuse_gaps(rows, geos, len(dates), pre)
    by_geo = {row["geo"]: row for row in rows}
    available = len(given) if given is not None else len(geos) // 2
    refuse_zero_kpi(_column(by_geo, geos, "training_response"))
    evaluation_spend = _column(by_geo, geos, "evaluation_spend")
    proxy = "spend" if dataset["has_spend"] and evaluation_spend.sum() > 0.0 else "response"
    spend_name = "spend" if proxy == "spend" else "response"
    return PairPanel(
        dataset_id=request.dataset_id,
        dataset_version=version,
        geos=tuple(geos),
        training_response=_column(by_geo, geos, "training_response"),
        training_spend=_column(by_geo, geos, f"training_{spend_name}"),
        evaluation_response=_column(by_geo, geos, "evaluation_response"),
        evaluation_spend=_column(by_geo, geos, f"evaluation_{spend_name}"),
        latest_response=_column(by_geo, geos, "latest_response"),
        pre_period=pre,
        evaluation_period=evaluation,
        training_days=training_days,
        evaluation_days=evaluation_days,
        spend_proxy=proxy,
        excluded=tuple(excluded),
        given_pairs=given,
        pair_counts=_pair_counts(request, available),
    )
