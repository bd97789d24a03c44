"""The reference panels as the CSV bodies ``POST /v1/geo/datasets`` takes (``geo,kpi,date``)."""

from __future__ import annotations

import csv
from pathlib import Path

GEOLIFT_DIR = Path(__file__).resolve().parent.parent / "tests" / "data" / "geolift"


def geolift_csv(path: Path = GEOLIFT_DIR / "GeoLift_Test.csv") -> str:
    """GeoLift's walkthrough panel (40 cities, 2021-01-01..2021-04-15; chicago and portland treated from
    April 1), its columns renamed to ``geo, kpi, date``."""
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    return "geo,kpi,date\n" + "".join(f"{r['location']},{r['Y']},{r['date']}\n" for r in rows)


def pretest_csv() -> str:
    """GeoLift's walkthrough history before any test (40 cities x 90 days, 2021-01-01..2021-03-31)."""
    return geolift_csv(GEOLIFT_DIR / "GeoLift_PreTest.csv")
