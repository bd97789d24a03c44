"""Results of a geo experiment: load its panel window, run the estimator off the loop, shape the answer.

The results service (:mod:`api.results.service`) calls :func:`load_geo_run` on a connection, then
:func:`compute_geo_results` without one, for a ``geo`` experiment.
Methods: ``synthetic_control`` and ``augmented_synthetic_control`` (:func:`stats.geo_lift.estimate_geo_lift`,
conformal inference), ``tbr`` (:func:`stats.tbr.estimate_tbr`, the treated markets' sum regressed on
the sum of every other market) and, for experiments with matched ``pairs``, ``trimmed_match``
(:func:`stats.trimmed_match.trimmed_match` on each pair's treatment-minus-control KPI and spend summed
over the test period).

Missing market-dates are handled before any estimator runs, under the request's ``missing`` policy
(:mod:`api.geo.preparation`, :mod:`stats.panel_gaps`; default ``drop_market``, which invents no value).
TBR then regresses the per-date sum of the treated markets on the per-date sum of the controls, so
``missing=zero`` is exactly Google's matched_markets convention (an absent row adds nothing to its
group's sum) and reproduces its published figures.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Literal
from uuid import UUID

import msgspec
import numpy as np

from api.database import Connection
from api.errors import Conflict, InvalidInput, invalid_field
from api.experiments.cells import stored_cells
from api.experiments.schemas import GeoCell
from api.geo.backtest import BacktestInput, complete_result, planned_effect
from api.geo.pivot import pivot_rows
from api.geo.preparation import prepare_panel
from api.geo.repository import GeoRepository, Row
from api.geo.schemas import (
    GeoCooldownEffect,
    GeoLiftInterval,
    GeoMethod,
    GeoResults,
    GeoSeriesPoint,
    MultiCellGeoResults,
)
from api.interval import Interval as Estimate
from stats.geo_lift import GeoLiftEstimate, estimate_geo_lift
from stats.intervals import Interval
from stats.panel_gaps import MISSING_POLICIES, MissingPolicy
from stats.tbr import METHODS as TBR_INTERVALS
from stats.tbr import TBRMethod, TBRResult, estimate_tbr
from stats.trimmed_match import TrimmedMatchResult, trimmed_match, trimmed_mean_test_p_value

METHODS: tuple[GeoMethod, ...] = ("synthetic_control", "augmented_synthetic_control", "tbr", "trimmed_match")
DEFAULT_PERMUTATIONS = 1000
LISTED_GAPS = 5
VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"


@dataclass(frozen=True)
class _Window:
    """The analysed panel: markets (rows), dates (columns), and the two periods as column slices."""

    panel: np.ndarray
    geos: list[str]
    dates: list[date]
    pre: slice
    post: slice
    spend: np.ndarray  # same shape as ``panel``; NaN where a row has no spend
    cooldown: slice | None = None  # the cool-down dates after the test, when the experiment has them


def _number(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _estimate(interval: Interval) -> Estimate:
    return Estimate(
        estimate=_number(interval.estimate), ci_low=_number(interval.ci_low), ci_high=_number(interval.ci_high)
    )


def _design(experiment_row: Any) -> dict[str, Any]:
    design = experiment_row["design"]
    if isinstance(design, str | bytes):
        design = msgspec.json.decode(design)
    if not isinstance(design, dict):
        raise InvalidInput("The experiment carries no geo design")
    return design


def _period(design: dict[str, Any], key: str) -> tuple[date, date]:
    period = design[key]
    return date.fromisoformat(str(period["start"])), date.fromisoformat(str(period["end"]))


async def _load_window(
    connection: Connection,
    dataset_id: UUID,
    treated: list[str],
    pre: tuple[date, date],
    test: tuple[date, date],
    cooldown: tuple[date, date] | None = None,
) -> _Window:
    """The panel of the pre-period, test and cool-down dates, NaN where a market has no value."""
    repository = GeoRepository(connection)
    dataset = await repository.get(dataset_id)
    if dataset is None:
        raise Conflict(f"The experiment's geo dataset {dataset_id} no longer exists")
    geos: list[str] = list(dataset["geos"])
    known = set(geos)
    unknown = [g for g in treated if g not in known]
    if unknown:
        raise invalid_field("treatment_markets", f"not in dataset {dataset_id}: {', '.join(map(repr, unknown))}")
    if pre[0] > pre[1] or test[0] > test[1] or test[0] <= pre[1]:
        raise invalid_field("test_period", "the pre-period must end before the test period starts")
    uncovered: list[str] = []
    if dataset["first_date"] > pre[0]:
        uncovered.append(f"the pre-period starts {pre[0]} but the dataset starts {dataset['first_date']}")
    if dataset["last_date"] < test[1]:
        uncovered.append(f"the test period ends {test[1]} but the dataset ends {dataset['last_date']}")
    if cooldown is not None and dataset["last_date"] < cooldown[1]:
        uncovered.append(f"the cool-down ends {cooldown[1]} but the dataset ends {dataset['last_date']}")
    if uncovered:
        raise Conflict("The dataset does not cover the experiment's periods: " + "; ".join(uncovered))
    last = test[1] if cooldown is None else cooldown[1]
    rows = await repository.panel_window(dataset_id, pre[0], last)
    return await asyncio.to_thread(_pivot, rows, sorted(geos), pre, test, cooldown)


def _pivot(
    rows: list[Row],
    geos: list[str],
    pre: tuple[date, date],
    test: tuple[date, date],
    cooldown: tuple[date, date] | None,
) -> _Window:
    dates = sorted({r["date"] for r in rows})
    pre_dates = [d for d in dates if pre[0] <= d <= pre[1]]
    test_dates = [d for d in dates if test[0] <= d <= test[1]]
    cooldown_dates = [] if cooldown is None else [d for d in dates if cooldown[0] <= d <= cooldown[1]]
    missing: list[str] = []
    if not test_dates:
        missing.append(f"the dataset has no date in the test period {test[0]}..{test[1]}")
    if cooldown is not None and not cooldown_dates:
        missing.append(f"the dataset has no date in the cool-down {cooldown[0]}..{cooldown[1]}")
    if len(pre_dates) < 3:
        missing.append(f"the pre-period has {len(pre_dates)} dates with data; at least 3 are needed")
    if missing:
        raise Conflict("The dataset does not cover the experiment's periods: " + "; ".join(missing))
    # Only the dates of the periods are analysed (a gap between them is skipped). Missing market-dates
    # stay NaN here; :func:`api.geo.preparation.prepare_panel` handles them under the requested policy.
    axis = pre_dates + test_dates + cooldown_dates
    end_of_test = len(pre_dates) + len(test_dates)
    return _Window(
        panel=pivot_rows(rows, geos, axis),
        geos=geos,
        dates=axis,
        pre=slice(0, len(pre_dates)),
        post=slice(len(pre_dates), end_of_test),
        spend=pivot_rows(rows, geos, axis, "spend"),
        cooldown=slice(end_of_test, len(axis)) if cooldown_dates else None,
    )


def _prepared(
    window: _Window, protected: set[str], excluded: set[str], missing: MissingPolicy, role: str
) -> tuple[_Window, list[str]]:
    """The window with the ``excluded`` markets left out and its gaps handled (:func:`prepare_panel`)."""
    n_cooldown = 0 if window.cooldown is None else window.cooldown.stop - window.cooldown.start
    periods = (window.pre.stop, window.post.stop - window.post.start, n_cooldown)
    done = prepare_panel(
        window.panel, window.spend, window.geos, window.dates, periods, protected, excluded, missing, role
    )
    end_of_test = done.n_pre + done.n_test
    prepared = _Window(
        panel=done.panel,
        geos=done.geos,
        dates=done.dates,
        pre=slice(0, done.n_pre),
        post=slice(done.n_pre, end_of_test),
        spend=done.spend,
        cooldown=slice(end_of_test, end_of_test + done.n_cooldown) if done.n_cooldown else None,
    )
    return prepared, done.notes


def _chart(series: list[GeoSeriesPoint], test_start: date, kpi_title: str) -> dict[str, Any]:
    values: list[dict[str, Any]] = []
    for point in series:
        day = point.date.isoformat()
        values.append({"date": day, "series": "observed", "value": point.observed})
        values.append(
            {
                "date": day,
                "series": "counterfactual",
                "value": point.counterfactual,
                "ci_low": point.ci_low,
                "ci_high": point.ci_high,
            }
        )
    x = {"field": "date", "type": "temporal", "title": "Date"}
    return {
        "$schema": VEGA_LITE_SCHEMA,
        "description": "Treated markets: observed vs counterfactual total, with the counterfactual's band.",
        "width": 640,
        "height": 300,
        "data": {"values": values},
        "layer": [
            {
                "transform": [{"filter": "datum.ci_low != null && datum.ci_high != null"}],
                "mark": {"type": "area", "opacity": 0.2, "color": "#ff7f0e"},
                "encoding": {
                    "x": x,
                    "y": {"field": "ci_low", "type": "quantitative", "title": kpi_title},
                    "y2": {"field": "ci_high"},
                },
            },
            {
                "mark": {"type": "line"},
                "encoding": {
                    "x": x,
                    "y": {"field": "value", "type": "quantitative", "title": kpi_title},
                    "color": {"field": "series", "type": "nominal", "title": None},
                    "strokeDash": {
                        "field": "series",
                        "type": "nominal",
                        "scale": {"domain": ["observed", "counterfactual"], "range": [[1, 0], [5, 3]]},
                        "legend": None,
                    },
                },
            },
            {
                "data": {"values": [{"date": test_start.isoformat()}]},
                "mark": {"type": "rule", "strokeDash": [2, 2], "color": "gray"},
                "encoding": {"x": x},
            },
        ],
    }


def _from_geo_lift(experiment_id: UUID, result: GeoLiftEstimate, window: _Window) -> GeoResults:
    dates = [window.dates[p] for p in result.series.period]
    series = [
        GeoSeriesPoint(
            date=d,
            observed=float(o),
            counterfactual=float(c),
            ci_low=_number(lo),
            ci_high=_number(hi),
        )
        for d, o, c, lo, hi in zip(
            dates,
            result.series.observed,
            result.series.counterfactual,
            result.series.ci_low,
            result.series.ci_high,
            strict=True,
        )
    ]
    warnings: list[str] = []
    if result.ci_status != "interval":
        warnings.append(
            f"The set of constant effects the test accepts is {result.ci_status.replace('_', '-')}; "
            "the interval reported is its hull."
        )
    if not result.estimate_in_ci:
        warnings.append(
            "The interval does not contain the point estimate, which happens when the pre-period fit is poor or "
            "the test is very short (the re-fit under each hypothesised effect moves the counterfactual); read "
            "both with care."
        )
    fit: dict[str, Any] = {
        "pre_rmse": result.fit.rmse,
        "scaled_l2_imbalance": result.fit.scaled_l2_imbalance,
        "ridge_lambda": result.fit.ridge_lambda,
        "n_pre_periods": window.pre.stop - window.pre.start,
        "n_test_periods": result.n_test_periods,
        "n_treated": len(result.treated),
        "n_donors": len(window.geos) - len(result.treated),
        "statistic": result.statistic,
        "scheme": result.scheme,
        "n_permutations": result.n_permutations,
        "observed_total": result.observed_total,
        "counterfactual_total": result.counterfactual_total,
    }
    return GeoResults(
        experiment_id=experiment_id,
        method=result.method,
        confidence_level=result.confidence_level,
        att=_estimate(result.att),
        incremental=_estimate(result.incremental),
        lift=GeoLiftInterval(absolute=_estimate(result.lift.absolute), relative=_estimate(result.lift.relative)),
        p_value=_number(result.p_value),
        p_value_iid=_number(result.p_value_iid),
        p_value_sharp_null=_number(result.p_value_sharp_null),
        placebo_p_value=_number(result.placebo_p_value),
        ci_status=result.ci_status,
        iroas=None if result.iroas is None else _estimate(result.iroas),
        weights=dict(sorted(result.weights.items(), key=lambda kv: -abs(kv[1]))),
        fit=fit,
        series=series,
        chart=_chart(series, window.dates[window.post.start], "KPI (treated markets' total)"),
        warnings=warnings,
    )


def _from_tbr(
    experiment_id: UUID, result: TBRResult, window: _Window, treated: list[str], controls: list[str]
) -> GeoResults:
    s = result.series
    pre_dates = window.dates[window.pre]
    post_dates = window.dates[window.post]
    series = [
        GeoSeriesPoint(date=d, observed=float(o), counterfactual=float(c), ci_low=None, ci_high=None)
        for d, o, c in zip(pre_dates, s.pre_observed, s.pre_fitted, strict=True)
    ] + [
        GeoSeriesPoint(date=d, observed=float(o), counterfactual=float(c), ci_low=_number(lo), ci_high=_number(hi))
        for d, o, c, lo, hi in zip(post_dates, s.observed, s.counterfactual, s.ci_low, s.ci_high, strict=True)
    ]
    warnings: list[str] = list(result.warnings)
    if math.isfinite(result.fit.r_squared) and result.fit.r_squared < 0.5:
        warnings.append(
            f"The control markets explain little of the treated markets' pre-period (R^2 = {result.fit.r_squared:.2f})."
        )
    fit: dict[str, Any] = {
        "intercept": result.fit.intercept,
        "slope": result.fit.slope,
        "sigma": result.fit.sigma,
        "df": result.fit.df,
        "pre_rmse": result.fit.rmse,
        "r_squared": _number(result.fit.r_squared),
        "residual_autocorrelation": _number(result.fit.residual_autocorrelation),
        "interval_method": result.method,
        "n_pre_periods": result.fit.n_pre,
        "n_test_periods": result.n_test_days,
        "n_treated": len(treated),
        "n_controls": len(controls),
        "standard_error": result.standard_error,
        "one_sided_p_value": result.one_sided.p_value,
        "observed_total": result.observed_total,
        "counterfactual_total": result.counterfactual_total,
    }
    return GeoResults(
        experiment_id=experiment_id,
        method="tbr",
        confidence_level=result.confidence_level,
        att=_estimate(result.att),
        incremental=_estimate(result.incremental),
        lift=GeoLiftInterval(absolute=_estimate(result.att), relative=_estimate(result.relative)),
        p_value=_number(result.p_value),
        p_value_iid=None,
        p_value_sharp_null=None,
        placebo_p_value=None,
        ci_status="interval",
        iroas=None if result.iroas is None else _estimate(result.iroas),
        # The control series is the plain sum of the other markets: each enters with weight 1.
        weights={g: 1.0 for g in controls},
        fit=fit,
        series=series,
        chart=_chart(series, post_dates[0], "KPI (treated markets' total)"),
        warnings=warnings,
    )


def _pair_rows(window: _Window, pairs: list[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
    row_of = {g: i for i, g in enumerate(window.geos)}
    unknown = sorted({g for pair in pairs for g in pair if g not in row_of})
    if unknown:
        raise invalid_field("pairs", f"not in the experiment's dataset: {', '.join(map(repr, unknown))}")
    return np.array([row_of[t] for t, _ in pairs]), np.array([row_of[c] for _, c in pairs])


def _pair_deltas(window: _Window, pairs: list[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
    """Per pair, treatment minus control KPI and spend summed over the test period."""
    t, c = _pair_rows(window, pairs)
    kpi = window.panel[:, window.post].sum(axis=1)
    spend = window.spend[:, window.post].sum(axis=1)
    return kpi[t] - kpi[c], spend[t] - spend[c]


def _check_pair_spend(window: _Window, pairs: list[tuple[str, str]]) -> None:
    """409 unless every pair geo has spend on every test date and some pair's spend delta is not 0."""
    t, c = _pair_rows(window, pairs)
    rows = np.concatenate((t, c))
    block = window.spend[rows][:, window.post]
    if np.isnan(window.spend).all():
        raise Conflict(
            "method=trimmed_match needs spend: the experiment's dataset has no `spend` column; upload the panel "
            "with a spend per market and date (date,geo,kpi,spend)"
        )
    if np.isnan(block).any():
        gi, dj = np.nonzero(np.isnan(block))
        dates = window.dates[window.post]
        listed = ", ".join(
            f"{window.geos[rows[g]]} on {dates[d]}" for g, d in zip(gi[:LISTED_GAPS], dj[:LISTED_GAPS], strict=True)
        )
        raise Conflict(
            f"method=trimmed_match needs spend: the dataset has no spend for {gi.size} market-dates of the pairs' "
            f"test period (for example {listed})"
        )
    _, spend_delta = _pair_deltas(window, pairs)
    if np.max(np.abs(spend_delta)) < 1e-10:
        raise Conflict(
            "method=trimmed_match needs spend that differs within pairs: every pair's spend delta (treatment minus "
            "control spend over the test period) is zero, so iROAS is undefined"
        )


def _excludes_zero(low: float, high: float) -> bool:
    return low > 0.0 or high < 0.0


def _trimmed_match_p_value(y: np.ndarray, x: np.ndarray, result: TrimmedMatchResult) -> tuple[float, str]:
    """Two-sided p-value of iROAS = 0 consistent with the reported interval, and how it was found.

    ``t_test``: :func:`stats.trimmed_match.trimmed_mean_test_p_value` of the response deltas (the
    residuals at iROAS 0) at the chosen trim rate, ``2 P(T_{h-1} > |t(0)|)`` with ``t(0)`` their
    studentized trimmed mean and ``h`` the untrimmed pairs: the test whose acceptance set the interval is
    the hull of. When that disagrees with the reported interval (the accepted set has a gap around 0, or the
    interval is the 3-standard-error fallback), ``interval_inversion``: the level at which the interval,
    recomputed at the same trim rate, starts to exclude 0, found by bisection on the side of
    ``1 - confidence_level`` the reported interval is on, so the two never contradict.
    """
    alpha = 1.0 - result.confidence_level
    p = trimmed_mean_test_p_value(y, result.trimmed_per_side)
    excludes = _excludes_zero(result.ci_low, result.ci_high)
    if (p <= alpha) == excludes:
        return p, "t_test"

    def excluded(a: float) -> bool:
        again = trimmed_match(y, x, 1.0 - a, trim_rate=result.trim_rate)
        return _excludes_zero(again.ci_low, again.ci_high)

    if excludes:  # p in (0, alpha]: the smallest level's complement still excluding 0
        low, high = 1e-12, alpha
        if excluded(low):
            return low, "interval_inversion"
    else:  # p in (alpha, 1]
        low, high = alpha, 1.0 - 1e-12
        if not excluded(high):
            return 1.0, "interval_inversion"
    for _ in range(50):
        mid = 0.5 * (low + high)
        if excluded(mid):
            high = mid
        else:
            low = mid
    return high, "interval_inversion"


def _trimmed_match_results(
    experiment_id: UUID,
    window: _Window,
    pairs: list[tuple[str, str]],
    confidence_level: float,
    spend_delta: np.ndarray | None = None,
) -> GeoResults:
    """Trimmed match on the pairs' test-period deltas (``spend_delta``, when given, replaces their spend deltas)."""
    y, x = _pair_deltas(window, pairs)
    x = x if spend_delta is None else spend_delta
    result = trimmed_match(y, x, confidence_level)
    p_value, p_value_method = _trimmed_match_p_value(y, x, result)
    t, c = _pair_rows(window, pairs)
    treated_total = window.panel[t].sum(axis=0)
    control_total = window.panel[c].sum(axis=0)
    n_test = window.post.stop - window.post.start
    observed = float(treated_total[window.post].sum())
    incremental = result.incremental_response
    per_unit = float(len(pairs) * n_test)
    ends = [
        math.nan if v is None else float(v) for v in (incremental.estimate, incremental.ci_low, incremental.ci_high)
    ]
    att = Interval(estimate=ends[0] / per_unit, ci_low=ends[1] / per_unit, ci_high=ends[2] / per_unit)

    def relative(value: float) -> float | None:
        baseline = observed - value
        return value / baseline if baseline > 0.0 else None

    # value / (observed - value) increases with value while the counterfactual stays positive.
    relative_estimate = Estimate(
        estimate=_number(relative(ends[0])), ci_low=_number(relative(ends[1])), ci_high=_number(relative(ends[2]))
    )
    series = [
        GeoSeriesPoint(date=d, observed=float(o), counterfactual=float(k), ci_low=None, ci_high=None)
        for d, o, k in zip(window.dates, treated_total, control_total, strict=True)
    ]
    warnings: list[str] = []
    if result.ci_is_fallback:
        warnings.append(
            "The trimmed-mean test accepts almost every iROAS (the pairs' spend deltas say little about the "
            "response); the iROAS interval is the estimate plus or minus 3 x the test's critical value x its "
            "standard error."
        )
    if len(pairs) < 10:
        warnings.append(f"Only {len(pairs)} pairs: the trimmed-match interval is approximate with so few.")
    if relative_estimate.estimate is None:
        warnings.append("The counterfactual (observed minus incremental KPI) is not positive: no relative lift.")
    fit: dict[str, Any] = {
        "roi_kind": "average",
        "iroas_definition": "incremental KPI per unit of incremental spend over the test period",
        "trim_rate": result.trim_rate,
        "trimmed_per_side": result.trimmed_per_side,
        "trimmed_pairs": [list(pairs[k]) for k in result.trimmed_pairs],
        "n_pairs": result.n_pairs,
        "std_error": result.std_error,
        "ci_is_fallback": result.ci_is_fallback,
        "p_value_method": p_value_method,
        "trim_candidates": [
            {"trim_rate": cand.trim_rate, "estimate": cand.estimate, "std_error": cand.std_error}
            for cand in result.candidates
        ],
        "incremental_cost": result.incremental_cost,
        "observed_total": observed,
        "counterfactual_total": observed - ends[0],
        "control_total": float(control_total[window.post].sum()),
        "n_pre_periods": window.pre.stop - window.pre.start,
        "n_test_periods": n_test,
        "att_definition": "incremental KPI per pair and test date",
        "series": "observed: the treatment geos' total; counterfactual: the control geos' total (no model)",
    }
    return GeoResults(
        experiment_id=experiment_id,
        method="trimmed_match",
        confidence_level=confidence_level,
        att=_estimate(att),
        incremental=_estimate(incremental),
        lift=GeoLiftInterval(absolute=_estimate(att), relative=relative_estimate),
        p_value=_number(p_value),
        p_value_iid=None,
        p_value_sharp_null=None,
        placebo_p_value=None,
        ci_status="interval",
        iroas=_estimate(Interval(estimate=result.estimate, ci_low=result.ci_low, ci_high=result.ci_high)),
        weights={},
        fit=fit,
        series=series,
        chart=_chart(series, window.dates[window.post.start], "KPI (treatment geos' total vs control geos' total)"),
        warnings=warnings,
    )


def _incremental_cost(design: dict[str, Any]) -> float | None:
    """What iROAS divides by: the sum of ``spend_change`` (negative when the test cuts spend), else ``spend``."""
    change = design.get("spend_change")
    if change:
        return float(sum(float(v) for v in change.values()))
    spend = design.get("spend")
    return float(spend) if spend is not None else None


def _test_window(window: _Window) -> _Window:
    """The pre-period and test dates only (the cool-down left out)."""
    end = window.post.stop
    return _Window(
        window.panel[:, :end], window.geos, window.dates[:end], window.pre, window.post, window.spend[:, :end]
    )


def _cooldown_window(window: _Window) -> _Window | None:
    """The pre-period then the cool-down dates, the cool-down in the place of the test (``post``)."""
    if window.cooldown is None:
        return None
    columns = np.r_[
        np.arange(window.pre.start, window.pre.stop), np.arange(window.cooldown.start, window.cooldown.stop)
    ]
    n_pre = window.pre.stop - window.pre.start
    return _Window(
        panel=window.panel[:, columns],
        geos=window.geos,
        dates=[window.dates[c] for c in columns],
        pre=slice(0, n_pre),
        post=slice(n_pre, columns.size),
        spend=window.spend[:, columns],
    )


def _cells_with_cost(design: dict[str, Any]) -> list[GeoCell] | None:
    """The design's cells, each ``spend`` the size of the cell's incremental cost: its own ``spend``, or with
    a test type the sum of ``spend_change`` over its markets (its sign is the run's ``spend_cut``, one for
    every cell as the test type is the experiment's); ``None`` when that is 0 or absent."""
    cells = stored_cells(design)
    if cells is None:
        return None
    change = design.get("spend_change") or {}
    sized: list[GeoCell] = []
    for cell in cells:
        cost = sum(float(change[g]) for g in cell.treatment_markets if g in change) if change else cell.spend
        spend = abs(cost) if cost is not None and cost != 0 else None
        sized.append(msgspec.structs.replace(cell, spend=spend))
    return sized


def _excluded_from_controls(design: dict[str, Any], geos: list[str], treated: list[str]) -> tuple[str, ...]:
    """The design's ``exclude_from_controls``, checked again against the dataset (400 naming the entry)."""
    excluded = [str(g) for g in design.get("exclude_from_controls") or []]
    known, treated_set = set(geos), set(treated)
    for i, geo in enumerate(excluded):
        if geo not in known:
            raise invalid_field(f"exclude_from_controls[{i}]", f"{geo!r} is not in the experiment's dataset")
        if geo in treated_set:
            raise invalid_field(f"exclude_from_controls[{i}]", f"{geo!r} is a treatment market")
    return tuple(sorted(set(excluded)))


@dataclass(frozen=True)
class GeoRun:
    """Everything a geo result is computed from, loaded from the database: no connection needed after.

    ``window`` is complete (missing market-dates handled under ``missing``); ``notes`` say what that
    preparation did and go into the result's ``warnings``.
    """

    experiment_id: UUID
    method: str
    confidence_level: float
    window: _Window
    treated: list[str]
    controls: list[str]
    spend: float | None
    pairs: list[tuple[str, str]] | None = None
    missing: MissingPolicy = "drop_market"
    notes: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    test_type: str | None = None
    spend_cut: bool = False  # the test cuts spend (holdback, go-dark): incremental cost and iROAS change sign
    cooldown_window: _Window | None = None  # pre-period then cool-down dates, when the test has a cool-down
    interval: TBRMethod = "conformal"
    planned_effect: float | None = None
    cells: list[GeoCell] | None = None  # a multi-cell experiment (api/geo/cells.py), each with its cost's size


async def load_geo_run(
    connection: Connection,
    experiment_row: Any,
    method: str = "synthetic_control",
    confidence_level: float = 0.9,
    missing: str = "drop_market",
    interval: str | None = None,
) -> GeoRun:
    """Validate the request and load the panel window a geo result needs.

    400 for an unknown method or missing-data policy, a confidence level outside (0, 1), treatment
    markets missing from the dataset or ``trimmed_match`` on an experiment without ``pairs``; 409 when
    the dataset does not cover the periods, when a treated market (a pair geo for ``trimmed_match``) has
    no value on a test date and ``missing`` is not ``zero``, when too few controls or pre-period dates
    remain, or (``trimmed_match``) when it has no spend for the pairs' test period.
    """
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
    if interval is not None and interval not in TBR_INTERVALS:
        raise invalid_field("interval", f"must be one of {', '.join(TBR_INTERVALS)}")
    design = _design(experiment_row)
    pairs: list[tuple[str, str]] | None = None
    if method == "trimmed_match":
        if not design.get("pairs"):
            raise invalid_field(
                "method",
                "trimmed_match needs a paired geo experiment: this experiment has no `pairs` "
                "([treatment_geo, control_geo] per pair); use synthetic_control, augmented_synthetic_control or tbr",
            )
        pairs = [(str(p[0]), str(p[1])) for p in design["pairs"]]
    experiment_id = UUID(str(experiment_row["id"]))
    dataset_id = UUID(str(design["dataset_id"]))
    treated = [str(g) for g in design["treatment_markets"]]
    pre, test = _period(design, "pre_period"), _period(design, "test_period")
    cooldown = _period(design, "cooldown_period") if design.get("cooldown_period") else None
    if cooldown is not None and (cooldown[0] <= test[1] or cooldown[1] < cooldown[0]):
        raise invalid_field("cooldown_period", "must start after the test period ends and not end before it starts")
    cost = _incremental_cost(design)
    spend = abs(cost) if cost is not None and cost != 0 else None
    raw = await _load_window(connection, dataset_id, treated, pre, test, cooldown)
    excluded = _excluded_from_controls(design, raw.geos, treated)
    if pairs is not None:
        _pair_rows(raw, pairs)  # 400 for a pair geo the dataset does not have
        protected, role = {g for pair in pairs for g in pair}, "pair geo"
    else:
        protected, role = set(treated), "treated market"
    prepared, notes = await asyncio.to_thread(_prepared, raw, protected, set(excluded), policy, role)
    window = _test_window(prepared)
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
        _check_pair_spend(window, pairs)
    tbr_interval: TBRMethod = "kerman" if interval == "kerman" else "conformal"
    planned = await planned_effect(connection, design)
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
        test_type=design.get("test_type"),
        spend_cut=cost is not None and cost < 0,
        cooldown_window=_cooldown_window(prepared),
        interval=tbr_interval,
        planned_effect=planned,
        cells=_cells_with_cost(design),
    )


def _backtest_input(run: GeoRun) -> BacktestInput:
    window = run.window
    pair_spend_delta = None
    if run.pairs is not None:
        pair_spend_delta = _pair_deltas(window, run.pairs)[1]
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

    A multi-cell run (``run.cells``) gives each cell's result (:mod:`api.geo.cells`) the same treatment as
    a single-cell one (excluded markets, test type, signed iROAS, cool-down) except the backtest, with
    what the data preparation did in the multi-cell ``warnings``."""
    if run.cells is not None:
        return await _multi_cell_run(run, run.cells, n_permutations=n_permutations, seed=seed, progress=progress)
    result = await _estimate_run(run, n_permutations=n_permutations, seed=seed, progress=progress)
    estimated = await _post_processed(run, result, n_permutations=n_permutations, seed=seed)
    return await asyncio.to_thread(complete_result, estimated, _backtest_input(run))


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
    from api.geo.cells import cell_run, multi_cell_results  # they build on this module

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


def _signed_iroas(iroas: Estimate | None, run: GeoRun) -> Estimate | None:
    """iROAS over the signed incremental cost: a test that cuts spend divides by a negative cost, so the
    estimator's iROAS over the cost's size changes sign and its bounds swap."""
    if iroas is None or not run.spend_cut:
        return iroas

    def negated(value: float | None) -> float | None:
        return None if value is None else -value

    return Estimate(estimate=negated(iroas.estimate), ci_low=negated(iroas.ci_high), ci_high=negated(iroas.ci_low))


async def _cooldown_effect(run: GeoRun, test: GeoResults, *, n_permutations: int, seed: int) -> GeoCooldownEffect:
    """The lagged effect over the cool-down: the same method with the cool-down dates as its test period
    (trimmed match: the pairs' cool-down KPI deltas against their test-period spend deltas)."""
    window = run.cooldown_window
    assert window is not None
    if run.method == "trimmed_match" and run.pairs is not None:
        lagged = await asyncio.to_thread(
            _trimmed_match_lagged, run.experiment_id, run.window, window, run.pairs, run.confidence_level
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


def _trimmed_match_lagged(
    experiment_id: UUID, test: _Window, cooldown: _Window, pairs: list[tuple[str, str]], confidence_level: float
) -> GeoResults:
    """Trimmed match on each pair's KPI delta over the cool-down against its spend delta over the test."""
    _, spend_delta = _pair_deltas(test, pairs)
    return _trimmed_match_results(experiment_id, cooldown, pairs, confidence_level, spend_delta)


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
        return await asyncio.to_thread(_trimmed_match_results, run.experiment_id, window, pairs, run.confidence_level)
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
        return _from_tbr(run.experiment_id, tbr, window, treated, controls)

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
            geo_method,
            run.confidence_level,
            run.spend,
            seed,
            n_permutations=n_permutations,
            progress=progress,
        )
    )
    return _from_geo_lift(run.experiment_id, estimate, window)
