"""Geo datasets: CSV and JSON uploads, refusals naming row and column, quality findings, reads."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.geo import panel_parsing
from testkit.panels import geolift_csv
from tests.conftest import DATA_DIR

Client = AsyncTestClient[Litestar]
CSV = {"Content-Type": "text/csv"}


def small_rows(**changes: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for geo in ("a", "b", "c"):
        for day in range(1, 11):
            rows.append({"date": f"2024-01-{day:02d}", "geo": geo, "kpi": 100.0 + day, "spend": 5.0})
    return rows


async def _count_rows(database_url: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        count: int = await connection.fetchval("SELECT count(*) FROM geo_observations")
        return count
    finally:
        await connection.close()


async def test_a_csv_panel_is_stored_and_described(client: Client) -> None:
    response = await client.post("/v1/geo/datasets?name=GeoLift", content=geolift_csv(), headers=CSV)
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/geo/datasets/{body['id']}"
    assert body["name"] == "GeoLift"
    assert body["geo_count"] == 40 and len(body["geos"]) == 40
    assert "chicago" in body["geos"] and body["geos"] == sorted(body["geos"])
    assert body["first_date"] == "2021-01-01" and body["last_date"] == "2021-04-15"
    assert body["date_count"] == 105 and body["row_count"] == 40 * 105
    assert body["has_spend"] is False
    assert body["quality"]["total_missing"] == 0
    fetched = await client.get(f"/v1/geo/datasets/{body['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == body


async def test_quality_findings_list_missing_dates_zero_runs_and_outliers(client: Client) -> None:
    lines = ["date,geo,kpi,spend"]
    for geo in ("north", "south", "east"):
        for day in range(1, 31):
            if geo == "north" and day in (3, 4):
                continue  # two missing dates
            kpi = 100 + (day % 5)
            if geo == "south" and 10 <= day <= 17:
                kpi = 0  # eight zeros in a row
            if geo == "east" and day == 20:
                kpi = 10_000  # an outlier
            lines.append(f"2024-04-{day:02d},{geo},{kpi},")
    response = await client.post("/v1/geo/datasets", content="\r\n".join(lines) + "\r\n", headers=CSV)
    assert response.status_code == 201, response.text
    quality = response.json()["quality"]
    assert quality["missing"] == [{"geo": "north", "missing_count": 2, "first_missing": ["2024-04-03", "2024-04-04"]}]
    assert quality["zero_runs"] == [{"geo": "south", "start": "2024-04-10", "end": "2024-04-17", "length": 8}]
    # The zeros are outliers of their market too; east has exactly one.
    assert [o["date"] for o in quality["outliers"] if o["geo"] == "east"] == ["2024-04-20"]
    assert quality["outlier_count"] == len(quality["outliers"])
    assert response.json()["has_spend"] is True
    assert response.json()["date_count"] == 30


async def test_a_json_panel_is_stored_and_its_series_read_back(client: Client) -> None:
    response = await client.post("/v1/geo/datasets", json={"name": "small", "rows": small_rows()})
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert dataset["geos"] == ["a", "b", "c"] and dataset["has_spend"] is True
    one = await client.get(f"/v1/geo/datasets/{dataset['id']}/series", params={"geo": "b"})
    assert one.status_code == 200
    rows = one.json()["rows"]
    assert len(rows) == 10 and {r["geo"] for r in rows} == {"b"}
    assert rows[0] == {"date": "2024-01-01", "geo": "b", "kpi": 101.0, "spend": 5.0}
    every = await client.get(f"/v1/geo/datasets/{dataset['id']}/series")
    assert len(every.json()["rows"]) == 30
    unknown = await client.get(f"/v1/geo/datasets/{dataset['id']}/series", params={"geo": "zz"})
    assert unknown.status_code == 400


async def test_quoted_csv_fields_are_read(client: Client) -> None:
    text = 'date,geo,kpi\n2024-01-01,"Portland, OR",5\n2024-01-01,"Salem, OR",6\n2024-01-02,"Portland, OR",7\n'
    response = await client.post("/v1/geo/datasets", content=text, headers=CSV)
    assert response.status_code == 201, response.text
    assert response.json()["geos"] == ["Portland, OR", "Salem, OR"]


def _param(response: Any) -> tuple[str, str]:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    param = response.json()["invalid_params"][0]
    return param["name"], param["reason"]


async def test_csv_refusals_name_the_line_and_column(client: Client, database_url: str) -> None:
    header = "date,geo,kpi\n"
    good = "".join(f"2024-01-{d:02d},{g},{d}\n" for g in ("a", "b") for d in range(1, 10))
    cases = {
        "2024-02-30,a,1\n": ("line 20, column date", "not a date"),
        "2024-02-01,a,x1\n": ("line 20, column kpi", "not a number"),
        "2024-02-01,a,-3\n": ("line 20, column kpi", "negative"),
        "2024-01-05,b,3\n": ("line 20, column date", "twice"),
        "2024-02-01,a\n": ("line 20", "expected 3 columns"),
    }
    for extra, (name, reason) in cases.items():
        found = _param(await client.post("/v1/geo/datasets", content=header + good + extra, headers=CSV))
        assert found[0] == name and reason in found[1], (extra, found)
    one_geo = header + "".join(f"2024-01-{d:02d},a,{d}\n" for d in range(1, 10))
    assert _param(await client.post("/v1/geo/datasets", content=one_geo, headers=CSV))[0] == "column geo"
    bad_header = "day,geo,kpi\n" + good
    assert _param(await client.post("/v1/geo/datasets", content=bad_header, headers=CSV))[0] == "line 1"
    assert await _count_rows(database_url) == 0


async def test_a_value_beyond_1e100_is_refused_at_upload_naming_where(client: Client) -> None:
    # it was stored, then every power, selection and result over the panel was a 400 naming `dataset`
    header = "date,geo,kpi,spend\n"
    good = "".join(f"2024-01-{d:02d},{g},{d},1\n" for g in ("a", "b") for d in range(1, 10))
    found = _param(await client.post("/v1/geo/datasets", content=header + good + "2024-02-01,a,1e300,1\n", headers=CSV))
    assert found[0] == "line 20, column kpi" and "1e+100" in found[1]
    found = _param(await client.post("/v1/geo/datasets", content=header + good + "2024-02-01,a,1,2e100\n", headers=CSV))
    assert found[0] == "line 20, column spend"
    rows = small_rows()
    rows[3]["kpi"] = 1e300
    assert _param(await client.post("/v1/geo/datasets", json={"rows": rows}))[0] == "rows[3].kpi"


async def test_json_refusals_name_the_row_and_field(client: Client) -> None:
    rows = small_rows()
    rows[12]["kpi"] = -1
    assert _param(await client.post("/v1/geo/datasets", json={"rows": rows}))[0] == "rows[12].kpi"
    rows = small_rows()
    rows[7]["date"] = "2024-13-01"
    assert _param(await client.post("/v1/geo/datasets", json={"rows": rows}))[0] == "rows[7].date"
    rows = small_rows()
    rows[15]["date"] = rows[14]["date"]
    name, reason = _param(await client.post("/v1/geo/datasets", json={"rows": rows}))
    assert name == "rows[15].date" and "rows[14].date" in reason
    only_a = [r for r in small_rows() if r["geo"] == "a"]
    assert _param(await client.post("/v1/geo/datasets", json={"rows": only_a}))[0] == "rows"


async def test_an_unknown_dataset_is_404(client: Client) -> None:
    missing = "00000000-0000-0000-0000-000000000000"
    assert (await client.get(f"/v1/geo/datasets/{missing}")).status_code == 404
    assert (await client.get(f"/v1/geo/datasets/{missing}/series")).status_code == 404


async def test_other_content_types_are_refused(client: Client) -> None:
    response = await client.post("/v1/geo/datasets", content="x", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415


async def test_a_csv_is_parsed_and_copied_block_by_block(
    client: Client, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(panel_parsing, "BLOCK_BYTES", 16 * 1024)  # about 25 blocks
    days = [f"{2000 + y}-{m:02d}-{d:02d}" for y in range(3) for m in range(1, 13) for d in range(1, 29)]
    lines = ["date,geo,kpi,spend"] + [f"{day},market_{g:03d},{1000 + g}.25,12.5" for g in range(12) for day in days]
    response = await client.post("/v1/geo/datasets", content="\n".join(lines) + "\n", headers=CSV)
    assert response.status_code == 201, response.text
    assert response.json()["row_count"] == len(lines) - 1 == await _count_rows(database_url)
    assert response.json()["geo_count"] == 12
    # A bad value in a late block names its true line; a repeat across blocks is found; nothing more is stored.
    broken = list(lines)
    broken[-5] = broken[-5].replace("1011.25", "1011,25")
    found = _param(await client.post("/v1/geo/datasets", content="\n".join(broken) + "\n", headers=CSV))
    assert found[0] == f"line {len(lines) - 4}"
    repeated = [*lines, lines[1]]
    found = _param(await client.post("/v1/geo/datasets", content="\n".join(repeated) + "\n", headers=CSV))
    assert found[0] == f"line {len(lines) + 1}, column date" and "line 2, column date" in found[1]
    assert await _count_rows(database_url) == len(lines) - 1


async def test_geolifts_own_file_uploads_as_it_is(client: Client) -> None:
    """GeoLift's `location,Y,date` header is read as geo, kpi, date."""
    body = (DATA_DIR / "geolift" / "GeoLift_PreTest.csv").read_bytes()
    response = await client.post("/v1/geo/datasets", content=body, headers={"Content-Type": "text/csv"})
    assert response.status_code == 201, response.text
    assert response.json()["geo_count"] == 40 and response.json()["date_count"] == 90


async def test_google_trimmed_match_file_with_midnight_times_uploads_as_it_is(client: Client) -> None:
    """trimmed_match's `date,geo,response,cost` with `2020-01-01T00:00:00` dates: response as kpi, cost as spend."""
    body = (DATA_DIR / "trimmed_match" / "example_data_for_design.csv").read_bytes()
    response = await client.post("/v1/geo/datasets", content=body, headers={"Content-Type": "text/csv"})
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert (dataset["geo_count"], dataset["date_count"], dataset["has_spend"]) == (174, 364, True)
    assert dataset["first_date"] == "2020-01-01"


async def test_a_date_with_a_time_other_than_midnight_is_refused_naming_the_line(client: Client) -> None:
    body = "date,geo,kpi\n2020-01-01T00:00:00,a,1\n2020-01-02T13:30:00,a,2\n"
    response = await client.post("/v1/geo/datasets", content=body, headers={"Content-Type": "text/csv"})
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "line 3, column date"


async def test_google_matched_markets_file_uploads_with_its_gaps_reported(client: Client) -> None:
    """matched_markets' `"date","geo","sales","cost"`: sales as kpi, cost as spend; its 75 missing geo-days listed."""
    body = (DATA_DIR / "matched_markets" / "salesandcost.csv").read_bytes()
    response = await client.post("/v1/geo/datasets", content=body, headers={"Content-Type": "text/csv"})
    assert response.status_code == 201, response.text
    assert response.json()["geo_count"] == 100
    assert response.json()["quality"]["total_missing"] == 75


async def test_a_kpi_at_the_top_of_the_range_is_accepted(client: Client) -> None:
    rows = small_rows()
    rows[4]["kpi"] = 1e100
    response = await client.post("/v1/geo/datasets", json={"rows": rows})
    assert response.status_code == 201, response.text
