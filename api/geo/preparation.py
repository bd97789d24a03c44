"""The analysed panel of a geo result before any estimator sees it: markets left out of the controls,
missing market-dates handled under the requested policy (:mod:`stats.geo.panel_gaps`), what was done said in
plain words for the result's ``warnings``.

The panel's columns are the pre-period dates, then the test dates, then the cool-down dates (if any).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

from api.http.errors import Conflict
from stats.geo.panel_gaps import MissingPolicy, complete_panel, protected_gaps

FloatArray = npt.NDArray[np.float64]
LISTED = 5
MIN_PRE_DATES = 3


@dataclass(frozen=True)
class PreparedPanel:
    """A complete panel (no NaN in ``panel``; ``spend`` keeps NaN where a row has no spend)."""

    panel: FloatArray
    spend: FloatArray
    geos: list[str]
    dates: list[date]
    n_pre: int
    n_test: int
    n_cooldown: int
    notes: list[str]


def _listed(items: Sequence[object]) -> str:
    shown = ", ".join(str(i) for i in items[:LISTED])
    return shown + (f" and {len(items) - LISTED} more" if len(items) > LISTED else "")


def _refuse_protected_gaps(
    panel: FloatArray, protected: np.ndarray, pre: np.ndarray, geos: list[str], dates: list[date], role: str
) -> None:
    gaps = protected_gaps(panel, protected, pre)
    if not gaps:
        return
    described = [(geos[r], [dates[c] for c in columns]) for r, columns in gaps]
    text = "; ".join(f"{geo!r} on {_listed([d.isoformat() for d in days])}" for geo, days in described[:LISTED])
    raise Conflict(
        f"The dataset has no value for {role} {text} inside the test period (or cool-down), where the effect is "
        "measured: no value is invented there. Upload the missing rows, or ask with missing=zero if an absent "
        "row means a KPI of 0",
        [
            ("treatment_markets", f"{geo!r} has no value on {', '.join(d.isoformat() for d in days)}")
            for geo, days in described
        ],
    )


def prepare_panel(
    panel: FloatArray,
    spend: FloatArray,
    geos: list[str],
    dates: list[date],
    periods: tuple[int, int, int],
    protected: set[str],
    excluded: set[str],
    policy: MissingPolicy,
    role: str = "treated market",
) -> PreparedPanel:
    """Leave out the ``excluded`` markets, then complete the panel under ``policy``.

    ``periods`` is the number of pre-period, test and cool-down columns. ``protected`` markets (the
    treated ones, or every pair geo for trimmed match) are never left out. 409 when a protected market
    has a gap outside the pre-period (unless ``policy`` is ``zero``) or when fewer than 3 pre-period
    dates remain.
    """
    n_pre, n_test, n_cooldown = periods
    keep = np.array([g not in excluded for g in geos], dtype=bool)
    panel, spend = panel[keep], spend[keep]
    geos = [g for g, k in zip(geos, keep, strict=True) if k]
    is_protected = np.array([g in protected for g in geos], dtype=bool)
    is_pre = np.arange(len(dates)) < n_pre
    if policy != "zero":
        _refuse_protected_gaps(panel, is_protected, is_pre, geos, dates, role)
    positions = np.array([d.toordinal() for d in dates], dtype=np.float64)
    done = complete_panel(panel, is_protected, is_pre, positions, policy)
    kept_dates = [dates[c] for c in done.columns]
    kept_geos = [geos[r] for r in done.rows]
    notes: list[str] = []
    if done.dropped_rows:
        dropped = [geos[r] for r in done.dropped_rows]
        notes.append(
            f"missing=drop_market: {len(dropped)} control market(s) with missing dates left out of the controls: "
            f"{_listed(dropped)}."
            if policy == "drop_market"
            else f"missing={policy}: {len(dropped)} market(s) with no value at all left out: {_listed(dropped)}."
        )
    if done.dropped_columns:
        days = [dates[c].isoformat() for c in done.dropped_columns]
        notes.append(
            f"missing=drop_market: {len(days)} pre-period date(s) on which a {role} has no value left out of the "
            f"fit: {_listed(days)}."
        )
    if done.filled:
        filled_geos = [geos[r] for r in done.filled_rows]
        how = "by linear interpolation in time" if policy == "interpolate" else "with 0 (an absent row counts as 0)"
        notes.append(
            f"missing={policy}: {done.filled} missing market-date(s) filled {how}, in {len(filled_geos)} market(s): "
            f"{_listed(filled_geos)}."
        )
        outside = protected_gaps(panel, is_protected, is_pre)
        if outside:
            cells = sum(len(c) for _, c in outside)
            notes.append(
                f"{cells} of them are {role} dates inside the test period (or cool-down), counted as 0: "
                f"{_listed([geos[r] for r, _ in outside])}."
            )
    n_pre_kept = int(np.count_nonzero(done.columns < n_pre))
    if n_pre_kept < MIN_PRE_DATES:
        raise Conflict(
            f"Only {n_pre_kept} pre-period dates remain after leaving out those with missing values "
            f"(missing={policy}); at least {MIN_PRE_DATES} are needed",
            [("missing", f"leaves {n_pre_kept} pre-period dates")],
        )
    return PreparedPanel(
        panel=done.panel,
        spend=spend[np.ix_(done.rows, done.columns)],
        geos=kept_geos,
        dates=kept_dates,
        n_pre=n_pre_kept,
        n_test=n_test,
        n_cooldown=n_cooldown,
        notes=notes,
    )
