"""Stored geo observation rows as the markets x dates matrix the estimators take."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from api.geo.repository import Row
from stats.geo.panel_quality import pivot_long_to_panel


def pivot_rows(
    rows: Sequence[Row], geos: Sequence[str], dates: Sequence[date], column: Literal["kpi", "spend"] = "kpi"
) -> NDArray[np.float64]:
    """``column`` per market (rows, in ``geos`` order) and date (columns, in ``dates`` order), NaN where no
    row gives one (or gives NULL, as spend may be).

    Rows on a date outside ``dates`` are left out (the gap between an experiment's periods); every
    row's market must be in ``geos``. The pivot itself is :func:`stats.geo.panel_quality.pivot_long_to_panel`.
    """
    geo_index = {g: i for i, g in enumerate(geos)}
    date_index = {d: j for j, d in enumerate(dates)}
    kept = [r for r in rows if r["date"] in date_index]
    return pivot_long_to_panel(
        np.fromiter((geo_index[r["geo"]] for r in kept), dtype=np.int64, count=len(kept)),
        np.fromiter((date_index[r["date"]] for r in kept), dtype=np.int64, count=len(kept)),
        np.fromiter((math.nan if r[column] is None else r[column] for r in kept), dtype=np.float64, count=len(kept)),
        len(geos),
        len(dates),
    )
