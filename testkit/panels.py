"""The reference panels (GeoLift's walkthrough, trimmed_match's design example) as the CSV bodies
``POST /v1/geo/datasets`` takes."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

GEOLIFT_DIR = Path(__file__).resolve().parent.parent / "tests" / "data" / "geolift"
# GeoLift's walkthrough: 40 cities; chicago and portland treated from 2021-04-01 to 2021-04-15.
GEOLIFT_TEST = GEOLIFT_DIR / "GeoLift_Test.csv"  # 2021-01-01..2021-04-15
GEOLIFT_PRETEST = GEOLIFT_DIR / "GeoLift_PreTest.csv"  # the history before any test: 2021-01-01..2021-03-31
# trimmed_match's design example: 174 geos x the 364 days of 2020, with spend.
PAIR_DESIGN = GEOLIFT_DIR.parent / "trimmed_match" / "example_data_for_design.csv"
GEOLIFT_PRE_PERIOD = {"start": "2021-01-01", "end": "2021-03-31"}
GEOLIFT_TEST_PERIOD = {"start": "2021-04-01", "end": "2021-04-15"}


def geolift_rows(path: Path = GEOLIFT_TEST) -> list[dict[str, str]]:
    """The rows of one of GeoLift's walkthrough files, as its columns name them (``location``, ``Y``, ``date``)."""
    with path.open() as fh:
        return list(csv.DictReader(fh))


def as_geolift_csv(rows: list[dict[str, str]]) -> str:
    """``rows`` as a CSV body in GeoLift's own column names (``location,Y,date``), which the service maps."""
    return "location,Y,date\n" + "".join(f"{r['location']},{r['Y']},{r['date']}\n" for r in rows)


def geolift_csv(path: Path = GEOLIFT_TEST) -> str:
    """One of GeoLift's walkthrough files as a CSV body with the columns renamed to ``geo, kpi, date``."""
    return "geo,kpi,date\n" + "".join(f"{r['location']},{r['Y']},{r['date']}\n" for r in geolift_rows(path))


def pretest_csv() -> str:
    """GeoLift's walkthrough history before any test (40 cities x 90 days) as ``geo, kpi, date``."""
    return geolift_csv(GEOLIFT_PRETEST)


def pair_design_csv() -> str:
    """trimmed_match's design example as ``date, geo, kpi, spend`` (its timestamps cut to dates)."""
    with PAIR_DESIGN.open() as fh:
        rows = list(csv.DictReader(fh))
    return "date,geo,kpi,spend\n" + "".join(f"{r['date'][:10]},{r['geo']},{r['response']},{r['cost']}\n" for r in rows)


def geolift_design(dataset_id: str, /, **overrides: Any) -> dict[str, Any]:
    """The walkthrough's geo experiment on ``dataset_id``: TV in chicago and portland, $10,000 spend."""
    return {
        "kind": "geo",
        "name": "TV in Chicago and Portland",
        "dataset_id": dataset_id,
        "channel": "tv",
        "treatment_markets": ["chicago", "portland"],
        "pre_period": GEOLIFT_PRE_PERIOD,
        "test_period": GEOLIFT_TEST_PERIOD,
        "spend": 10_000.0,
    } | overrides
