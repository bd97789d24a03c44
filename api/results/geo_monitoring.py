"""``sequential=true`` on a geo result: the test read as a group-sequential test with a look every day.

:mod:`stats.geo.monitoring` runs the method's own conformal test on every day of the test observed so far
and holds each look to the nominal level of O'Brien-Fleming-type alpha spending over the planned test
days. This module picks the series the method uses from the run's window (the treated markets' mean and
the controls for the synthetic controls, their sums for TBR) and shapes the answer.
"""

from __future__ import annotations

import math

import numpy as np

from api.charts.monitoring import monitoring_chart
from api.fields.interval import Interval, finite_or_none
from api.geo.schemas import GeoLook, GeoMonitoring, GeoResults
from api.results.geo_run import GeoRun
from stats.geo.monitoring import (
    monitor_looks,
    scm_look_p_values,
    scm_repeated_interval,
    tbr_look_p_values,
    tbr_repeated_interval,
)
from stats.group_sequential import repeated_p_value


def monitored_reading(run: GeoRun, result: GeoResults, planned_days: int) -> GeoMonitoring:
    """The group-sequential reading of ``result`` after the test days in ``run.window`` (CPU: run off the loop)."""
    window = run.window
    index = {g: i for i, g in enumerate(window.geos)}
    treated_rows = [index[g] for g in run.treated]
    control_rows = [index[g] for g in run.controls]
    columns = np.r_[np.arange(window.pre.start, window.pre.stop), np.arange(window.post.start, window.post.stop)]
    panel = window.panel[:, columns]
    pre_days = window.pre.stop - window.pre.start
    days = window.post.stop - window.post.start
    alpha = 1.0 - run.confidence_level
    n_treated = len(treated_rows)
    if run.method == "tbr":
        treated_sum = panel[treated_rows].sum(axis=0)
        control_sum = panel[control_rows].sum(axis=0)
        p_values = tbr_look_p_values(treated_sum, control_sum, pre_days)
    else:
        treated = panel[treated_rows].mean(axis=0)
        donors = panel[control_rows].T
        ridge = result.fit.get("ridge_lambda") if run.method == "augmented_synthetic_control" else None
        ridge_lambda = float(ridge) if isinstance(ridge, int | float) else None
        p_values = scm_look_p_values(treated, donors, pre_days, ridge_lambda=ridge_lambda)
    reading = monitor_looks(p_values, planned_days, alpha=alpha)
    fractions = [j / planned_days for j in range(1, min(days, planned_days) + 1)]
    p_value = repeated_p_value(p_values[: len(fractions)], fractions)
    att_estimate = result.att.estimate
    if run.method == "tbr":
        low, high = tbr_repeated_interval(treated_sum, control_sum, pre_days, reading.nominal_level)
        incremental = Interval(result.incremental.estimate, finite_or_none(low), finite_or_none(high))
        att = _scaled(incremental, att_estimate, 1.0 / (n_treated * days))
    else:
        scale = float(np.std(treated[:pre_days])) or 1.0
        center = att_estimate if att_estimate is not None and math.isfinite(att_estimate) else 0.0
        low, high = scm_repeated_interval(
            treated, donors, pre_days, reading.nominal_level, estimate=center, scale=scale, ridge_lambda=ridge_lambda
        )
        att = Interval(att_estimate, finite_or_none(low), finite_or_none(high))
        incremental = _scaled(att, result.incremental.estimate, float(n_treated * days))
    first_test_day = window.post.start
    looks = [
        GeoLook(
            day=look.day,
            date=window.dates[first_test_day + look.day - 1],
            p_value_fixed_horizon=look.p_value_fixed_horizon,
            nominal_level=look.nominal_level,
            crossed=look.crossed,
        )
        for look in reading.looks
    ]
    decision_date = None if reading.decision_day is None else looks[reading.decision_day - 1].date
    return GeoMonitoring(
        spending="obrien_fleming",
        planned_days=planned_days,
        days_observed=days,
        p_value=p_value,
        att=att,
        incremental=incremental,
        decision=reading.decision,
        decision_day=reading.decision_day,
        decision_date=decision_date,
        nominal_level=reading.nominal_level,
        looks=looks,
        chart=monitoring_chart(looks, reading.decision_day),
    )


def _scaled(interval: Interval, estimate: float | None, factor: float) -> Interval:
    def times(value: float | None) -> float | None:
        return None if value is None else finite_or_none(value * factor)

    return Interval(estimate, times(interval.ci_low), times(interval.ci_high))
