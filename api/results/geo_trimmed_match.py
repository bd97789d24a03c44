"""Trimmed match (Chen and Au 2019, :mod:`stats.geo.trimmed_match`) on a paired geo experiment: each pair's
treatment-minus-control KPI and spend over the test period, the iROAS interval, a p-value consistent with
it, and the lagged effect over a cool-down.

The trim rate is the design's when it fixes one, else chosen from the data up to a bound (:func:`trim_bound_of`):
the bound a matched-pair design simulated its RMSE and minimum detectable iROAS with, for an experiment made from
one (``design_source.kind`` ``matched_pairs``), so that the result is the estimator whose precision the design
promised; else the estimator's default (Google's post-analysis).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

import numpy as np

from api.charts.geo_series import observed_vs_counterfactual_chart
from api.experiments.schemas import DesignSource
from api.fields.interval import estimate_of, finite_or_none
from api.geo.schemas import (
    GeoLiftInterval,
    GeoResults,
    GeoSeriesPoint,
)
from api.http.errors import Conflict, invalid_field
from api.results.geo_window import GeoWindow
from stats.geo.pair_design import DESIGN_MAX_TRIM_RATE
from stats.geo.trimmed_match import (
    DEFAULT_MAX_TRIM_RATE,
    TrimmedMatchResult,
    relative_lift,
    trimmed_match,
    trimmed_match_p_value,
)
from stats.intervals import Interval

LISTED_GAPS = 5
TrimBoundSource = Literal["matched_pair_design", "estimator_default"]


@dataclass(frozen=True)
class TrimBound:
    """The largest trim rate a result may choose from the data, and where it comes from."""

    max_trim_rate: float = DEFAULT_MAX_TRIM_RATE
    source: TrimBoundSource = "estimator_default"


ESTIMATOR_DEFAULT = TrimBound()


def trim_bound_of(design_source: DesignSource | None) -> TrimBound:
    """The bound of the data-driven trim rate for an experiment made from ``design_source``.

    A matched-pair design evaluates every design with the trim chosen up to ``DESIGN_MAX_TRIM_RATE`` (10%, the
    package's design default) and reports that estimator's RMSE and minimum detectable iROAS; the experiment made
    from it is analysed with the same bound, so the result is the estimator the design's figures describe (up to
    25% the result would search more trim rates after seeing the data, an analysis the design never simulated).
    Every other paired experiment: the estimator's default, 25%.
    """
    if design_source is not None and design_source.kind == "matched_pairs":
        return TrimBound(DESIGN_MAX_TRIM_RATE, "matched_pair_design")
    return ESTIMATOR_DEFAULT


def pair_rows(window: GeoWindow, pairs: list[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
    row_of = {g: i for i, g in enumerate(window.geos)}
    unknown = sorted({g for pair in pairs for g in pair if g not in row_of})
    if unknown:
        raise invalid_field("pairs", f"not in the experiment's dataset: {', '.join(map(repr, unknown))}")
    return np.array([row_of[t] for t, _ in pairs]), np.array([row_of[c] for _, c in pairs])


def pair_deltas(window: GeoWindow, pairs: list[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
    """Per pair, treatment minus control KPI and spend summed over the test period."""
    t, c = pair_rows(window, pairs)
    kpi = window.panel[:, window.post].sum(axis=1)
    spend = window.spend[:, window.post].sum(axis=1)
    return kpi[t] - kpi[c], spend[t] - spend[c]


def check_pair_spend(window: GeoWindow, pairs: list[tuple[str, str]]) -> None:
    """409 unless every pair geo has spend on every test date and some pair's spend delta is not 0."""
    t, c = pair_rows(window, pairs)
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
    _, spend_delta = pair_deltas(window, pairs)
    if np.max(np.abs(spend_delta)) < 1e-10:
        raise Conflict(
            "method=trimmed_match needs spend that differs within pairs: every pair's spend delta (treatment minus "
            "control spend over the test period) is zero, so iROAS is undefined"
        )


def trimmed_match_results(
    experiment_id: UUID,
    window: GeoWindow,
    pairs: list[tuple[str, str]],
    confidence_level: float,
    spend_delta: np.ndarray | None = None,
    trim_rate: float | None = None,
    bound: TrimBound = ESTIMATOR_DEFAULT,
) -> GeoResults:
    """Trimmed match on the pairs' test-period deltas (``spend_delta``, when given, replaces their spend deltas),
    at the design's ``trim_rate`` when it fixes one, else at the rate chosen from the data up to ``bound``."""
    y, x = pair_deltas(window, pairs)
    x = x if spend_delta is None else spend_delta
    result = trimmed_match(y, x, confidence_level, trim_rate=trim_rate, max_trim_rate=bound.max_trim_rate)
    p_value, p_value_method = trimmed_match_p_value(y, x, result)
    t, c = pair_rows(window, pairs)
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

    relative_estimate = estimate_of(relative_lift(incremental, observed))
    series = [
        GeoSeriesPoint(date=d, observed=float(o), counterfactual=float(k), ci_low=None, ci_high=None)
        for d, o, k in zip(window.dates, treated_total, control_total, strict=True)
    ]
    warnings = _trimmed_match_warnings(result, len(pairs), relative_estimate.estimate is None)
    if trim_rate is not None and bound.source == "matched_pair_design" and trim_rate > bound.max_trim_rate:
        warnings.append(
            f"trim_rate {trim_rate:g} exceeds the {bound.max_trim_rate:g} its matched-pair design simulated: the "
            "design's RMSE and minimum detectable iROAS describe another analysis than this one."
        )
    fit = _trimmed_match_fit(
        result,
        pairs,
        None if trim_rate is not None else bound,
        p_value_method,
        window,
        observed,
        ends[0],
        float(control_total[window.post].sum()),
    )
    return GeoResults(
        experiment_id=experiment_id,
        method="trimmed_match",
        confidence_level=confidence_level,
        att=estimate_of(att),
        incremental=estimate_of(incremental),
        lift=GeoLiftInterval(absolute=estimate_of(att), relative=relative_estimate),
        p_value=finite_or_none(p_value),
        p_value_iid=None,
        p_value_sharp_null=None,
        placebo_p_value=None,
        ci_status="interval",
        iroas=estimate_of(Interval(estimate=result.estimate, ci_low=result.ci_low, ci_high=result.ci_high)),
        weights={},
        fit=fit,
        series=series,
        chart=observed_vs_counterfactual_chart(
            series,
            window.dates[window.post.start],
            "KPI (treatment geos' total vs control geos' total)",
            confidence_level,
        ),
        warnings=warnings,
    )


def _trimmed_match_warnings(result: TrimmedMatchResult, n_pairs: int, no_relative_lift: bool) -> list[str]:
    """What a trimmed-match result warns of: a fallback interval, few pairs, no relative lift."""
    warnings: list[str] = []
    if result.ci_is_fallback:
        warnings.append(
            "The trimmed-mean test accepts almost every iROAS (the pairs' spend deltas say little about the "
            "response); the iROAS interval is the estimate plus or minus 3 x the test's critical value x its "
            "standard error."
        )
    if n_pairs < 10:
        warnings.append(f"Only {n_pairs} pairs: the trimmed-match interval is approximate with so few.")
    if no_relative_lift:
        warnings.append("The counterfactual (observed minus incremental KPI) is not positive: no relative lift.")
    return warnings


def _trimmed_match_fit(
    result: TrimmedMatchResult,
    pairs: list[tuple[str, str]],
    chosen_within: TrimBound | None,
    p_value_method: str,
    window: GeoWindow,
    observed: float,
    incremental_estimate: float,
    control_observed: float,
) -> dict[str, Any]:
    """The result's ``fit``: the trim chosen (from the data within ``chosen_within``, or fixed by the design when
    it is ``None``) and the candidates, the totals and the definitions used.

    ``observed`` and ``control_observed`` are the treatment and control geos' test-period totals,
    ``incremental_estimate`` the incremental KPI (NaN when there is none).
    """
    return {
        "roi_kind": "average",
        "iroas_definition": "incremental KPI per unit of incremental spend over the test period",
        "trim_rate": result.trim_rate,
        "trim_rate_source": "data" if chosen_within is not None else "design",
        "max_trim_rate": None if chosen_within is None else chosen_within.max_trim_rate,
        "max_trim_rate_source": None if chosen_within is None else chosen_within.source,
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
        "counterfactual_total": observed - incremental_estimate,
        "control_total": control_observed,
        "n_pre_periods": window.pre.stop - window.pre.start,
        "n_test_periods": window.post.stop - window.post.start,
        "att_definition": "incremental KPI per pair and test date",
        "series": "observed: the treatment geos' total; counterfactual: the control geos' total (no model)",
    }


def trimmed_match_lagged(
    experiment_id: UUID,
    test: GeoWindow,
    cooldown: GeoWindow,
    pairs: list[tuple[str, str]],
    confidence_level: float,
    trim_rate: float | None = None,
    bound: TrimBound = ESTIMATOR_DEFAULT,
) -> GeoResults:
    """Trimmed match on each pair's KPI delta over the cool-down against its spend delta over the test."""
    _, spend_delta = pair_deltas(test, pairs)
    return trimmed_match_results(experiment_id, cooldown, pairs, confidence_level, spend_delta, trim_rate, bound)
