"""Data-quality findings for an uploaded geo x date KPI panel.

The panel is a ``G x T`` float matrix (one row per geo, one column per date of a strictly
increasing date axis) with NaN where a geo has no value for a date. Three kinds of findings, each
computed for all geos at once:

* missing values: per geo, how many dates have no value and the first few of them;
* zero runs: at least ``zero_run_min_length`` (default 7) consecutive dates of the axis whose value
  is exactly zero (a missing value ends a run: it is not a zero);
* outliers: values whose robust z-score ``|x - median| / (1.4826 * MAD)`` exceeds
  ``outlier_threshold`` (default 5), with the median and the median absolute deviation (MAD) taken
  over that geo's non-missing values. ``1.4826 = 1 / Phi^-1(3/4)`` makes ``1.4826 * MAD`` a
  consistent estimate of the standard deviation under normality (Rousseeuw & Croux, 1993;
  Iglewicz & Hoaglin, 1993). A geo whose MAD is zero (more than half of its values equal) has no
  finite robust z-score and is not screened.

``pivot_long_to_panel`` turns long rows ``(geo index, date index, value)`` into that matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from stats.errors import InvalidProblem

FloatArray = npt.NDArray[np.float64]
DateArray = npt.NDArray[np.datetime64]

__all__ = [
    "MAD_TO_SIGMA",
    "GeoGap",
    "Outlier",
    "PanelQuality",
    "ZeroRun",
    "assess_panel",
    "pivot_long_to_panel",
]

# 1 / Phi^-1(3/4): scales the MAD to the standard deviation of a normal distribution.
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class GeoGap:
    """A geo with ``missing_count`` dates without a value; ``first_missing`` lists the earliest few."""

    geo: str
    missing_count: int
    first_missing: tuple[np.datetime64, ...]


@dataclass(frozen=True)
class ZeroRun:
    """``length`` consecutive dates (``start`` to ``end``, both included) on which ``geo`` reported 0."""

    geo: str
    start: np.datetime64
    end: np.datetime64
    length: int


@dataclass(frozen=True)
class Outlier:
    """A value far from its geo's median; ``robust_z`` is signed: ``(value - median) / (1.4826 MAD)``."""

    geo: str
    date: np.datetime64
    value: float
    robust_z: float


@dataclass(frozen=True)
class PanelQuality:
    """Findings for one panel, each tuple ordered by geo (panel order) then date.

    ``missing`` holds only geos with at least one missing date; ``total_missing`` counts missing
    geo-date cells over the whole panel. ``first_date``/``last_date`` are ``None`` for a panel
    without dates.
    """

    missing: tuple[GeoGap, ...]
    zero_runs: tuple[ZeroRun, ...]
    outliers: tuple[Outlier, ...]
    geo_count: int
    date_count: int
    first_date: np.datetime64 | None
    last_date: np.datetime64 | None
    total_missing: int


def _checked_panel(
    values: npt.ArrayLike, geos: Sequence[str], dates: npt.ArrayLike
) -> tuple[FloatArray, list[str], DateArray]:
    panel = np.asarray(values, dtype=np.float64)
    labels = [str(geo) for geo in geos]
    days = np.asarray(dates).astype("datetime64[D]")
    if days.ndim != 1:
        raise InvalidProblem("dates", "must be a one-dimensional list of dates")
    if panel.ndim != 2 or panel.shape != (len(labels), days.size):
        raise InvalidProblem(
            "values",
            f"must be a geos x dates matrix of shape ({len(labels)}, {days.size}), got {panel.shape}",
        )
    seen: set[str] = set()
    for label in labels:
        if label in seen:
            raise InvalidProblem("geos", f"geo {label!r} appears more than once")
        seen.add(label)
    if np.isnat(days).any():
        raise InvalidProblem("dates", "contains a missing date")
    if days.size > 1 and not (np.diff(days) > np.timedelta64(0, "D")).all():
        raise InvalidProblem("dates", "must be strictly increasing (sorted, no repeats)")
    if np.isinf(panel).any():
        raise InvalidProblem("values", "contains infinite values")
    return panel, labels, days


def _missing(missing: npt.NDArray[np.bool_], labels: list[str], days: DateArray, listed: int) -> tuple[GeoGap, ...]:
    counts = missing.sum(axis=1)
    rows, cols = np.nonzero(missing)  # row-major: grouped by geo, dates ascending
    row_start = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(rows.size) - row_start[rows]
    listed_dates = days[cols[rank < listed]]
    per_geo = np.split(listed_dates, np.cumsum(np.minimum(counts, listed))[:-1]) if labels else []
    return tuple(
        GeoGap(geo=labels[g], missing_count=int(counts[g]), first_missing=tuple(per_geo[g]))
        for g in np.flatnonzero(counts).tolist()
    )


def _zero_runs(panel: FloatArray, labels: list[str], days: DateArray, min_length: int) -> tuple[ZeroRun, ...]:
    geo_count, date_count = panel.shape
    padded = np.zeros((geo_count, date_count + 2), dtype=np.int8)
    padded[:, 1:-1] = panel == 0.0  # NaN != 0, so a missing date ends a run
    step = np.diff(padded, axis=1)
    # Every row starts and ends on a non-zero pad, so the row-major starts and ends pair up.
    start_rows, starts = np.nonzero(step == 1)
    _, stops = np.nonzero(step == -1)
    lengths = stops - starts
    long_enough = lengths >= min_length
    return tuple(
        ZeroRun(geo=labels[g], start=days[s], end=days[s + n - 1], length=n)
        for g, s, n in zip(
            start_rows[long_enough].tolist(),
            starts[long_enough].tolist(),
            lengths[long_enough].tolist(),
            strict=True,
        )
    )


def _outliers(panel: FloatArray, labels: list[str], days: DateArray, threshold: float) -> tuple[Outlier, ...]:
    observed_rows = np.flatnonzero((~np.isnan(panel)).any(axis=1))
    if observed_rows.size == 0:
        return ()
    # The robust z is scale-free: each row is taken in units of a power of two at least its largest
    # magnitude (exact), so the median's mean of two values and the deviations cannot overflow for
    # values near 1e308. A MAD below the smallest normal double in those units is not resolved in
    # double precision and screens nothing, like a MAD of 0 (and keeps z finite).
    values = panel[observed_rows]
    exponent = np.frexp(np.nanmax(np.abs(values), axis=1))[1]
    with np.errstate(under="ignore"):
        rows = np.ldexp(values, -exponent[:, None])
    median = np.nanmedian(rows, axis=1)
    deviation = np.abs(rows - median[:, None])
    scale = MAD_TO_SIGMA * np.nanmedian(deviation, axis=1)
    screened = scale >= np.finfo(np.float64).tiny
    z = np.full_like(rows, np.nan)
    z[screened] = (rows[screened] - median[screened, None]) / scale[screened, None]
    with np.errstate(invalid="ignore"):
        flagged_rows, flagged_cols = np.nonzero(np.abs(z) > threshold)
    return tuple(
        Outlier(
            geo=labels[int(observed_rows[r])],
            date=days[c],
            value=float(values[r, c]),
            robust_z=float(z[r, c]),
        )
        for r, c in zip(flagged_rows.tolist(), flagged_cols.tolist(), strict=True)
    )


def assess_panel(
    values: npt.ArrayLike,
    geos: Sequence[str],
    dates: npt.ArrayLike,
    *,
    zero_run_min_length: int = 7,
    outlier_threshold: float = 5.0,
    max_listed_missing: int = 5,
) -> PanelQuality:
    """Data-quality findings for a ``len(geos) x len(dates)`` panel with NaN for missing values.

    ``dates`` must be strictly increasing (``datetime64``, converted to days); runs of zeros count
    consecutive entries of this axis. Raises :class:`~stats.errors.InvalidProblem` for a matrix of
    the wrong shape, repeated geos, unsorted or repeated dates, or infinite values.
    """
    if zero_run_min_length < 1:
        raise InvalidProblem("zero_run_min_length", "must be at least 1")
    if not outlier_threshold > 0:
        raise InvalidProblem("outlier_threshold", "must be positive")
    if max_listed_missing < 0:
        raise InvalidProblem("max_listed_missing", "must not be negative")
    panel, labels, days = _checked_panel(values, geos, dates)
    missing = np.isnan(panel)
    return PanelQuality(
        missing=_missing(missing, labels, days, max_listed_missing),
        zero_runs=_zero_runs(panel, labels, days, zero_run_min_length),
        outliers=_outliers(panel, labels, days, outlier_threshold),
        geo_count=len(labels),
        date_count=int(days.size),
        first_date=days[0] if days.size else None,
        last_date=days[-1] if days.size else None,
        total_missing=int(missing.sum()),
    )


def pivot_long_to_panel(
    geo_index: npt.ArrayLike,
    date_index: npt.ArrayLike,
    values: npt.ArrayLike,
    n_geos: int,
    n_dates: int,
    *,
    geos: Sequence[str] | None = None,
    dates: npt.ArrayLike | None = None,
) -> FloatArray:
    """Build the ``n_geos x n_dates`` matrix from long rows, NaN where no row gives a value.

    Row ``i`` puts ``values[i]`` at ``(geo_index[i], date_index[i])``; a NaN value stays missing.
    Two rows for the same geo and date raise :class:`~stats.errors.InvalidProblem` with
    ``field="rows"``, naming the pair by its labels when ``geos``/``dates`` are given (by index
    otherwise); so do indices out of range and columns of different lengths.
    """
    if n_geos < 0 or n_dates < 0:
        raise InvalidProblem("rows", "the panel size must not be negative")
    g = np.asarray(geo_index)
    d = np.asarray(date_index)
    v = np.asarray(values, dtype=np.float64)
    if g.ndim != 1 or d.ndim != 1 or v.ndim != 1 or not g.size == d.size == v.size:
        raise InvalidProblem("rows", "geo index, date index and value columns must be 1-D and of equal length")
    if g.size and not (np.issubdtype(g.dtype, np.integer) and np.issubdtype(d.dtype, np.integer)):
        raise InvalidProblem("rows", "geo and date indices must be integers")
    g = g.astype(np.int64, copy=False)
    d = d.astype(np.int64, copy=False)
    bad = (g < 0) | (g >= n_geos) | (d < 0) | (d >= n_dates)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InvalidProblem(
            "rows",
            f"row {row} points at geo index {int(g[row])}, date index {int(d[row])}, "
            f"outside the {n_geos} x {n_dates} panel",
        )
    cell = g * n_dates + d
    ordered = np.sort(cell, kind="stable")
    repeated = ordered[1:] == ordered[:-1]
    if repeated.any():
        key = int(ordered[1:][repeated][0])
        geo_at, date_at = divmod(key, n_dates)
        geo_name = repr(str(geos[geo_at])) if geos is not None else f"index {geo_at}"
        date_name = str(np.asarray(dates)[date_at]) if dates is not None else f"index {date_at}"
        count = int((cell == key).sum())
        raise InvalidProblem("rows", f"{count} rows for geo {geo_name} on date {date_name}; expected at most one")
    panel = np.full(n_geos * n_dates, np.nan)
    panel[cell] = v
    return panel.reshape(n_geos, n_dates)
