"""Geo results shaped for the API from an estimator's answer: synthetic control and ridge ASCM
(:func:`stats.geo.lift.estimate_geo_lift`) and TBR (:func:`stats.geo.tbr.estimate_tbr`), each with its series
of observed vs counterfactual totals and a Vega-Lite chart of them.
"""

from __future__ import annotations

import math
from typing import Any
from uuid import UUID

from api.charts.geo_series import observed_vs_counterfactual_chart
from api.fields.interval import estimate_of, finite_or_none
from api.geo.schemas import (
    GeoLiftInterval,
    GeoResults,
    GeoSeriesPoint,
)
from api.results.geo_window import GeoWindow
from stats.geo.lift import GeoLiftEstimate
from stats.geo.tbr import TBRResult


def from_geo_lift(experiment_id: UUID, result: GeoLiftEstimate, window: GeoWindow) -> GeoResults:
    dates = [window.dates[p] for p in result.series.period]
    series = [
        GeoSeriesPoint(
            date=d,
            observed=float(o),
            counterfactual=float(c),
            ci_low=finite_or_none(lo),
            ci_high=finite_or_none(hi),
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
        att=estimate_of(result.att),
        incremental=estimate_of(result.incremental),
        lift=GeoLiftInterval(absolute=estimate_of(result.lift.absolute), relative=estimate_of(result.lift.relative)),
        p_value=finite_or_none(result.p_value),
        p_value_iid=finite_or_none(result.p_value_iid),
        p_value_sharp_null=finite_or_none(result.p_value_sharp_null),
        placebo_p_value=finite_or_none(result.placebo_p_value),
        ci_status=result.ci_status,
        iroas=None if result.iroas is None else estimate_of(result.iroas),
        weights=dict(sorted(result.weights.items(), key=lambda kv: -abs(kv[1]))),
        fit=fit,
        series=series,
        chart=observed_vs_counterfactual_chart(
            series, window.dates[window.post.start], "KPI (treated markets' total)", result.confidence_level
        ),
        warnings=warnings,
    )


def from_tbr(
    experiment_id: UUID, result: TBRResult, window: GeoWindow, treated: list[str], controls: list[str]
) -> GeoResults:
    s = result.series
    pre_dates = window.dates[window.pre]
    post_dates = window.dates[window.post]
    series = [
        GeoSeriesPoint(date=d, observed=float(o), counterfactual=float(c), ci_low=None, ci_high=None)
        for d, o, c in zip(pre_dates, s.pre_observed, s.pre_fitted, strict=True)
    ] + [
        GeoSeriesPoint(
            date=d, observed=float(o), counterfactual=float(c), ci_low=finite_or_none(lo), ci_high=finite_or_none(hi)
        )
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
        "r_squared": finite_or_none(result.fit.r_squared),
        "residual_autocorrelation": finite_or_none(result.fit.residual_autocorrelation),
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
        att=estimate_of(result.att),
        incremental=estimate_of(result.incremental),
        lift=GeoLiftInterval(absolute=estimate_of(result.att), relative=estimate_of(result.relative)),
        p_value=finite_or_none(result.p_value),
        p_value_iid=None,
        p_value_sharp_null=None,
        placebo_p_value=None,
        ci_status=result.ci_status,
        iroas=None if result.iroas is None else estimate_of(result.iroas),
        # The control series is the plain sum of the other markets: each enters with weight 1.
        weights={g: 1.0 for g in controls},
        fit=fit,
        series=series,
        chart=observed_vs_counterfactual_chart(
            series, post_dates[0], "KPI (treated markets' total)", result.confidence_level
        ),
        warnings=warnings,
    )
