"""Missing market-dates in an analysed geo panel: make it complete under a stated policy.

A panel ``(G, T)`` (markets x dates, NaN where a market reported nothing) is made complete before an
estimator sees it. Two kinds of rows are told apart:

* *protected* rows (the treated markets; for trimmed match every pair's geos) cannot be left out,
  because they are what is measured;
* every other row is a *control* (donor) and may be left out.

Policies (``missing``):

* ``drop_market`` (the default, the safest): no value is invented. A control market with any gap in
  the analysed dates is left out of the control group / donor pool; a pre-period date on which a
  protected market has no value is left out of the fit for every market. Its cost is variance (fewer
  donors, fewer pre-period dates), never bias from a made-up number.
* ``interpolate``: each market's gaps are filled by linear interpolation in calendar time between
  its nearest reported dates (the first or last reported value beyond either end); a market with no
  value at all in the window is left out. Smooths over a dip or a spike that really happened.
* ``zero``: an absent row counts as 0, as when a market with no sales writes no row. This is what
  summing the rows a group has on each date does (Google's matched_markets TBR, whose published
  figures are reproduced with it); wrong when the row is absent because it was lost, as a 0 is then
  read as a collapse of the market's KPI (a control's gap as a counterfactual dip, a treated gap as a
  negative effect).

A protected market's gap outside the pre-period (the test period or a cool-down, where the effect is
measured) is never filled by ``drop_market`` or ``interpolate``: :func:`protected_gaps` lists them and
the caller refuses the analysis. Only ``zero`` states what such a gap is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from stats.errors import InvalidProblem

MissingPolicy = Literal["drop_market", "interpolate", "zero"]
MISSING_POLICIES: tuple[MissingPolicy, ...] = get_args(MissingPolicy)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class CompletedPanel:
    """The complete panel and what was done to get it.

    ``rows`` and ``columns`` index the kept markets and dates of the input; ``panel`` is
    ``input[rows][:, columns]`` with every gap filled (no NaN). ``dropped_rows`` are the control markets
    left out, ``dropped_columns`` the pre-period dates left out, ``filled`` the number of cells given a
    value (interpolated or 0) and ``filled_rows`` the markets they are in.
    """

    panel: FloatArray
    rows: IntArray
    columns: IntArray
    dropped_rows: list[int]
    dropped_columns: list[int]
    filled: int
    filled_rows: list[int]


def protected_gaps(panel: FloatArray, protected: BoolArray, pre: BoolArray) -> list[tuple[int, list[int]]]:
    """``(row, columns)`` of each protected row's gaps outside the pre-period columns ``pre``."""
    gaps = np.isnan(panel) & protected[:, None] & ~pre[None, :]
    return [(int(r), np.flatnonzero(gaps[r]).tolist()) for r in np.flatnonzero(gaps.any(axis=1))]


def _interpolated(row: FloatArray, positions: FloatArray) -> FloatArray:
    known = ~np.isnan(row)
    filled: FloatArray = np.interp(positions, positions[known], row[known])
    return filled


def complete_panel(
    panel: FloatArray, protected: BoolArray, pre: BoolArray, positions: FloatArray, policy: MissingPolicy
) -> CompletedPanel:
    """Fill or leave out the gaps of ``panel`` (markets x dates) under ``policy`` (module docstring).

    ``protected`` marks the rows that cannot be left out, ``pre`` the pre-period columns (the only
    dates ``drop_market`` may leave out), ``positions`` each column's place in time (e.g. day numbers,
    increasing) for ``interpolate``. Under ``drop_market`` and ``interpolate`` a protected row must have
    no gap outside ``pre`` (see :func:`protected_gaps`); ``InvalidProblem`` otherwise.
    """
    if policy not in MISSING_POLICIES:
        raise InvalidProblem("missing", f"must be one of {', '.join(MISSING_POLICIES)}")
    gaps = np.isnan(panel)
    every_row = np.arange(panel.shape[0], dtype=np.int64)
    every_column = np.arange(panel.shape[1], dtype=np.int64)
    if not gaps.any():
        return CompletedPanel(panel.copy(), every_row, every_column, [], [], 0, [])
    if policy == "zero":
        gap_rows = np.flatnonzero(gaps.any(axis=1)).tolist()
        return CompletedPanel(np.where(gaps, 0.0, panel), every_row, every_column, [], [], int(gaps.sum()), gap_rows)
    if protected_gaps(panel, protected, pre):
        raise InvalidProblem("missing", "a protected market has a gap outside the pre-period; only `zero` fills it")
    if policy == "drop_market":
        drop_row = gaps.any(axis=1) & ~protected
        drop_column = (gaps & protected[:, None]).any(axis=0)
        rows = np.flatnonzero(~drop_row).astype(np.int64)
        columns = np.flatnonzero(~drop_column).astype(np.int64)
        return CompletedPanel(
            panel[np.ix_(rows, columns)],
            rows,
            columns,
            np.flatnonzero(drop_row).tolist(),
            np.flatnonzero(drop_column).tolist(),
            0,
            [],
        )
    empty = gaps.all(axis=1)
    if (empty & protected).any():
        raise InvalidProblem("missing", "a protected market has no value in the analysed dates")
    rows = np.flatnonzero(~empty).astype(np.int64)
    filled = panel[rows].copy()
    gap_rows = [int(r) for r in rows if gaps[r].any()]
    for k, r in enumerate(rows):
        if gaps[r].any():
            filled[k] = _interpolated(panel[r], positions)
    return CompletedPanel(
        filled, rows, every_column, np.flatnonzero(empty).tolist(), [], int(gaps[rows].sum()), gap_rows
    )
