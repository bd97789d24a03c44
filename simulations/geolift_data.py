"""Meta GeoLift's walkthrough panel (``tests/data/geolift/GeoLift_Test.csv``) and its published figures."""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

import numpy as np

GEOLIFT_TEST_CSV = Path(__file__).resolve().parents[1] / "tests" / "data" / "geolift" / "GeoLift_Test.csv"

# summary(GeoTest) in GeoLift's walkthrough (default SCM with fixed effects): weights to 4 decimals.
GEOLIFT_SCM_WEIGHTS = {
    "austin": 0.0465,
    "baton rouge": 0.1335,
    "cincinnati": 0.2272,
    "dallas": 0.0739,
    "honolulu": 0.0673,
    "houston": 0.0046,
    "miami": 0.2028,
    "minneapolis": 0.09,
    "nashville": 0.0685,
    "new york": 0.0046,
    "reno": 0.0306,
    "san antonio": 0.0054,
    "san diego": 0.0451,
}


@lru_cache(maxsize=1)
def _panel() -> tuple[np.ndarray, tuple[str, ...]]:
    with GEOLIFT_TEST_CSV.open() as fh:
        rows = list(csv.DictReader(fh))
    geos = sorted({r["location"] for r in rows})
    dates = sorted({r["date"] for r in rows})
    geo_index = {g: i for i, g in enumerate(geos)}
    date_index = {d: i for i, d in enumerate(dates)}
    panel = np.full((len(geos), len(dates)), np.nan)
    for r in rows:
        panel[geo_index[r["location"]], date_index[r["date"]]] = float(r["Y"])
    panel.setflags(write=False)
    return panel, tuple(geos)


def load_geolift_panel() -> tuple[np.ndarray, list[str]]:
    """The 40 geos x 105 days KPI panel (rows: geos sorted by name; columns: dates in order)."""
    panel, geos = _panel()
    return panel.copy(), list(geos)
