"""Tests for stats.geo.panel_quality (data-quality findings on a geo x date panel).

Expected numbers come from hand-built panels (the arithmetic is in the comments), from plain
per-geo Python loops used as independent oracles, from ``scipy.stats.median_abs_deviation``, and
from the Meta GeoLift example data (``tests/data/geolift/GeoLift_PreTest.csv``: 40 US cities x 90
days, 2021-01-01..2021-03-31, complete).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats

from stats.errors import InvalidProblem
from stats.geo.panel_quality import MAD_TO_SIGMA, PanelQuality, assess_panel, pivot_long_to_panel

DATA = Path(__file__).resolve().parents[1] / "data"
FloatArray = npt.NDArray[np.float64]


def _days(n: int, start: str = "2024-01-01") -> npt.NDArray[np.datetime64]:
    return np.datetime64(start, "D") + np.arange(n)


def _steady(n_geos: int, n_days: int) -> FloatArray:
    """Distinct values around 100 with a positive MAD and no outliers (values 95..105)."""
    cycle = (np.arange(n_days)[None, :] * 7 + np.arange(n_geos)[:, None] * 3) % 11
    return np.asarray(95.0 + cycle, dtype=np.float64)


def _assess(panel: FloatArray, **kwargs: int | float) -> PanelQuality:
    geos = [f"g{i}" for i in range(panel.shape[0])]
    return assess_panel(panel, geos, _days(panel.shape[1]), **kwargs)  # type: ignore[arg-type]


# --- missing values -------------------------------------------------------------------------------


def test_missing_dates_are_counted_per_geo_with_the_first_five_listed() -> None:
    panel = _steady(3, 30)
    panel[1, [2, 3, 10, 11, 12, 20, 25, 29]] = np.nan
    quality = _assess(panel)
    assert len(quality.missing) == 1
    gap = quality.missing[0]
    assert gap.geo == "g1"
    assert gap.missing_count == 8
    assert gap.first_missing == tuple(_days(30)[[2, 3, 10, 11, 12]])


def test_geos_without_missing_dates_are_not_listed_and_total_counts_every_cell() -> None:
    panel = _steady(4, 20)
    panel[0, 5] = np.nan
    panel[3, [0, 19]] = np.nan
    quality = _assess(panel)
    assert [(gap.geo, gap.missing_count) for gap in quality.missing] == [("g0", 1), ("g3", 2)]
    assert quality.total_missing == 3


def test_listing_no_missing_dates_still_reports_the_counts() -> None:
    panel = _steady(2, 10)
    panel[1, 4] = np.nan
    quality = _assess(panel, max_listed_missing=0)
    assert [(gap.geo, gap.missing_count, gap.first_missing) for gap in quality.missing] == [("g1", 1, ())]


def test_missing_findings_match_a_per_geo_loop() -> None:
    rng = np.random.default_rng(5)
    panel = _steady(50, 60)
    panel[rng.random(panel.shape) < 0.05] = np.nan
    quality = _assess(panel, max_listed_missing=3)
    dates = _days(60)
    expected = []
    for g in range(50):
        missing = [dates[t] for t in range(60) if np.isnan(panel[g, t])]
        if missing:
            expected.append((f"g{g}", len(missing), tuple(missing[:3])))
    assert [(gap.geo, gap.missing_count, gap.first_missing) for gap in quality.missing] == expected
    assert quality.total_missing == int(np.isnan(panel).sum())


# --- runs of zeros --------------------------------------------------------------------------------


def test_seven_consecutive_zero_days_are_a_run_and_six_are_not() -> None:
    panel = _steady(2, 30)
    panel[0, 3:10] = 0.0  # 7 days: 2024-01-04..2024-01-10
    panel[1, 3:9] = 0.0  # 6 days
    quality = _assess(panel)
    assert len(quality.zero_runs) == 1
    run = quality.zero_runs[0]
    assert (run.geo, run.start, run.end, run.length) == (
        "g0",
        np.datetime64("2024-01-04"),
        np.datetime64("2024-01-10"),
        7,
    )


def test_zero_runs_at_the_edges_and_several_in_one_geo_are_all_reported() -> None:
    panel = _steady(1, 40)
    panel[0, 0:8] = 0.0
    panel[0, 15:22] = 0.0
    panel[0, 30:40] = 0.0
    quality = _assess(panel)
    assert [(run.start, run.length) for run in quality.zero_runs] == [
        (np.datetime64("2024-01-01"), 8),
        (np.datetime64("2024-01-16"), 7),
        (np.datetime64("2024-01-31"), 10),
    ]


def test_a_missing_day_interrupts_a_zero_run() -> None:
    panel = _steady(1, 30)
    panel[0, 5:15] = 0.0
    panel[0, 10] = np.nan  # 5 zeros, a gap, 4 zeros
    assert _assess(panel).zero_runs == ()


def test_the_minimum_run_length_is_configurable() -> None:
    panel = _steady(1, 30)
    panel[0, 5:8] = 0.0
    assert [run.length for run in _assess(panel, zero_run_min_length=3).zero_runs] == [3]


def test_zero_runs_match_a_per_geo_loop() -> None:
    rng = np.random.default_rng(17)
    panel = np.where(rng.random((40, 200)) < 0.75, 0.0, 1.0)  # long zero stretches
    panel[rng.random(panel.shape) < 0.02] = np.nan
    dates = _days(200)
    expected = []
    for g in range(40):
        t = 0
        while t < 200:
            if panel[g, t] == 0.0:
                s = t
                while t < 200 and panel[g, t] == 0.0:
                    t += 1
                if t - s >= 7:
                    expected.append((f"g{g}", dates[s], dates[t - 1], t - s))
            else:
                t += 1
    found = [(run.geo, run.start, run.end, run.length) for run in _assess(panel).zero_runs]
    assert found == expected
    assert len(expected) > 50


# --- outliers -------------------------------------------------------------------------------------


def test_robust_z_score_is_distance_from_median_over_scaled_mad() -> None:
    # Values 1..9 and a 100: median 5.5, absolute deviations 4.5,3.5,2.5,1.5,.5,.5,1.5,2.5,3.5,94.5
    # -> MAD 2.5, scale 1.4826 * 2.5 = 3.7065, z(100) = 94.5 / 3.7065 = 25.4957...
    panel = np.array([[1.0, 2, 3, 4, 5, 6, 7, 8, 9, 100]])
    quality = _assess(panel)
    assert len(quality.outliers) == 1
    outlier = quality.outliers[0]
    assert (outlier.geo, outlier.date, outlier.value) == ("g0", np.datetime64("2024-01-10"), 100.0)
    assert outlier.robust_z == pytest.approx(94.5 / (1.4826 * 2.5), rel=1e-12)


def test_low_outliers_have_a_negative_robust_z_score() -> None:
    panel = _steady(1, 30)
    panel[0, 12] = 0.0
    outliers = _assess(panel).outliers
    assert [(o.date, o.robust_z < -5) for o in outliers] == [(np.datetime64("2024-01-13"), True)]


def test_the_outlier_threshold_is_strict() -> None:
    # Median 0, MAD 1 (values -2..2 and one x): z = x / 1.4826; x = 5 * 1.4826 is not beyond 5.
    base = [-2.0, -1.0, -1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 2.0]
    on_threshold = np.array([[*base, 5 * MAD_TO_SIGMA]])
    beyond = np.array([[*base, 5 * MAD_TO_SIGMA * 1.001]])
    assert _assess(on_threshold).outliers == ()
    assert len(_assess(beyond).outliers) == 1


def test_a_geo_whose_mad_is_zero_is_not_screened_for_outliers() -> None:
    panel = np.full((1, 20), 50.0)
    panel[0, 3] = 1e6
    assert _assess(panel).outliers == ()


def test_missing_values_are_left_out_of_the_median_and_mad() -> None:
    # Non-missing values 1..9 and 100 as in the hand-worked case above, with gaps in between.
    panel = np.array([[1.0, np.nan, 2, 3, 4, np.nan, 5, 6, 7, 8, 9, 100, np.nan]])
    (outlier,) = _assess(panel).outliers
    assert outlier.robust_z == pytest.approx(94.5 / (1.4826 * 2.5), rel=1e-12)


def test_outliers_match_scipy_median_abs_deviation_per_geo() -> None:
    rng = np.random.default_rng(23)
    panel = rng.lognormal(5.0, 0.3, (60, 120))
    spikes = rng.random(panel.shape) < 0.01
    panel[spikes] *= rng.choice([0.05, 8.0], size=int(spikes.sum()))
    panel[rng.random(panel.shape) < 0.03] = np.nan
    dates = _days(120)
    expected = []
    for g in range(60):
        row = panel[g]
        median = np.nanmedian(row)
        scale = stats.median_abs_deviation(row, scale=1 / 1.4826, nan_policy="omit")
        for t in range(120):
            z = (row[t] - median) / scale
            if abs(z) > 5:
                expected.append((f"g{g}", dates[t], float(z)))
    found = [(o.geo, o.date, o.robust_z) for o in _assess(panel).outliers]
    assert [(geo, date) for geo, date, _ in found] == [(geo, date) for geo, date, _ in expected]
    np.testing.assert_allclose([z for *_, z in found], [z for *_, z in expected], rtol=1e-12)
    assert len(expected) > 20


# --- panel facts and refused inputs ---------------------------------------------------------------


def test_geolift_example_panel_is_complete_40_geos_by_90_days() -> None:
    with (DATA / "geolift" / "GeoLift_PreTest.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    geos, geo_index = np.unique([row["location"] for row in rows], return_inverse=True)
    dates, date_index = np.unique(np.array([row["date"] for row in rows], dtype="datetime64[D]"), return_inverse=True)
    panel = pivot_long_to_panel(
        geo_index, date_index, np.array([float(row["Y"]) for row in rows]), geos.size, dates.size
    )
    quality = assess_panel(panel, geos.tolist(), dates)
    assert (quality.geo_count, quality.date_count) == (40, 90)
    assert (quality.first_date, quality.last_date) == (np.datetime64("2021-01-01"), np.datetime64("2021-03-31"))
    assert quality.missing == () and quality.total_missing == 0
    assert quality.zero_runs == ()


def test_a_panel_without_dates_has_no_first_or_last_date() -> None:
    quality = assess_panel(np.empty((2, 0)), ["a", "b"], np.array([], dtype="datetime64[D]"))
    assert (quality.geo_count, quality.date_count, quality.first_date, quality.last_date) == (2, 0, None, None)
    assert quality.missing == ()
    assert quality.zero_runs == ()
    assert quality.outliers == ()


def test_an_all_missing_geo_is_reported_missing_and_not_screened() -> None:
    panel = _steady(2, 10)
    panel[1] = np.nan
    quality = _assess(panel)
    assert [(gap.geo, gap.missing_count) for gap in quality.missing] == [("g1", 10)]
    assert quality.outliers == ()


@pytest.mark.parametrize(
    ("values", "geos", "dates", "field"),
    [
        (np.zeros((2, 3)), ["a", "b", "c"], _days(3), "values"),
        (np.zeros((2, 3)), ["a", "b"], _days(4), "values"),
        (np.zeros((2, 3)), ["a", "a"], _days(3), "geos"),
        (np.zeros((2, 3)), ["a", "b"], _days(3)[::-1], "dates"),
        (np.zeros((2, 3)), ["a", "b"], np.array(["2024-01-01", "2024-01-01", "2024-01-02"], "datetime64[D]"), "dates"),
        (np.array([[1.0, np.inf, 2.0], [1.0, 2.0, 3.0]]), ["a", "b"], _days(3), "values"),
    ],
)
def test_malformed_panels_are_refused_naming_the_field(
    values: FloatArray, geos: list[str], dates: npt.NDArray[np.datetime64], field: str
) -> None:
    with pytest.raises(InvalidProblem) as raised:
        assess_panel(values, geos, dates)
    assert raised.value.field == field


# --- pivot_long_to_panel --------------------------------------------------------------------------


def test_pivot_places_each_row_and_leaves_absent_cells_missing() -> None:
    panel = pivot_long_to_panel(np.array([0, 1, 1, 0]), np.array([2, 0, 1, 0]), [1.5, 2.5, 3.5, 4.5], 3, 3)
    expected = np.array([[4.5, np.nan, 1.5], [2.5, 3.5, np.nan], [np.nan, np.nan, np.nan]])
    np.testing.assert_array_equal(panel, expected)


def test_pivot_refuses_duplicate_rows_naming_the_geo_and_date() -> None:
    with pytest.raises(InvalidProblem) as raised:
        pivot_long_to_panel(
            np.array([0, 1, 1]),
            np.array([0, 1, 1]),
            [1.0, 2.0, 3.0],
            2,
            2,
            geos=["chicago", "portland"],
            dates=_days(2),
        )
    assert raised.value.field == "rows"
    assert "'portland'" in raised.value.reason
    assert "2024-01-02" in raised.value.reason


def test_pivot_refuses_duplicate_rows_naming_indices_without_labels() -> None:
    with pytest.raises(InvalidProblem) as raised:
        pivot_long_to_panel(np.array([2, 0, 2]), np.array([5, 1, 5]), [1.0, 2.0, 3.0], 3, 6)
    assert raised.value.field == "rows"
    assert "geo index 2" in raised.value.reason and "date index 5" in raised.value.reason


@pytest.mark.parametrize(
    ("geo_index", "date_index", "values"),
    [
        (np.array([0, 3]), np.array([0, 0]), [1.0, 2.0]),
        (np.array([0, -1]), np.array([0, 0]), [1.0, 2.0]),
        (np.array([0, 1]), np.array([0, 4]), [1.0, 2.0]),
        (np.array([0, 1]), np.array([0]), [1.0, 2.0]),
        (np.array([0.0, 1.0]), np.array([0, 1]), [1.0, 2.0]),
    ],
)
def test_pivot_refuses_rows_outside_the_panel_or_of_unequal_length(
    geo_index: npt.NDArray[np.generic], date_index: npt.NDArray[np.generic], values: list[float]
) -> None:
    with pytest.raises(InvalidProblem) as raised:
        pivot_long_to_panel(geo_index, date_index, values, 3, 4)
    assert raised.value.field == "rows"
