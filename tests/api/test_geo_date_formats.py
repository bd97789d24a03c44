"""Geo panels whose dates are written as their tools write them: ``?date_format=`` (strftime style, as
GeoLift's reader takes a ``format``) on CSV and JSON uploads; a date that does not parse is named by line,
column and value."""

from __future__ import annotations

import csv
from datetime import date, datetime

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.geo.panel_parsing import CsvPanelParser, check_date_format
from api.http.errors import InvalidInput
from tests.conftest import DATA_DIR

Client = AsyncTestClient[Litestar]
CSV = {"Content-Type": "text/csv"}


def pretest_rows() -> list[dict[str, str]]:
    with (DATA_DIR / "geolift" / "GeoLift_PreTest.csv").open() as fh:
        return list(csv.DictReader(fh))


def written(day: str, date_format: str) -> str:
    return date.fromisoformat(day).strftime(date_format)


@pytest.mark.parametrize("date_format", ["%m/%d/%Y", "%d.%m.%Y", "%Y%m%d", "%d %b %Y"])
async def test_a_csv_with_dates_in_a_format_of_its_own_gives_the_same_panel_as_iso_dates(
    client: Client, date_format: str
) -> None:
    rows = pretest_rows()
    iso = "date,geo,kpi\n" + "".join(f"{r['date']},{r['location']},{r['Y']}\n" for r in rows)
    own = "date,geo,kpi\n" + "".join(f"{written(r['date'], date_format)},{r['location']},{r['Y']}\n" for r in rows)
    reference = (await client.post("/v1/geo/datasets", content=iso, headers=CSV)).json()
    response = await client.post("/v1/geo/datasets", params={"date_format": date_format}, content=own, headers=CSV)
    assert response.status_code == 201, response.text
    dataset = response.json()
    for field in ("geos", "first_date", "last_date", "date_count", "row_count"):
        assert dataset[field] == reference[field]
    assert dataset["first_date"] == min(r["date"] for r in rows)
    chicago = await client.get(f"/v1/geo/datasets/{dataset['id']}/series", params={"geo": "chicago"})
    expected = sorted((r["date"], float(r["Y"])) for r in rows if r["location"] == "chicago")
    assert [(row["date"], row["kpi"]) for row in chicago.json()["rows"]] == expected


async def test_a_date_not_in_the_format_is_named_by_line_column_and_value(client: Client) -> None:
    body = "date,geo,kpi\n01/02/2024,a,1\n01/02/2024,b,2\n2024-01-03,a,3\n01/03/2024,b,4\n"
    response = await client.post("/v1/geo/datasets", params={"date_format": "%m/%d/%Y"}, content=body, headers=CSV)
    assert response.status_code == 400
    (param,) = response.json()["invalid_params"]
    assert param["name"] == "line 4, column date"
    assert "'2024-01-03' is not a date in the date_format '%m/%d/%Y'" in param["reason"]


async def test_without_a_format_an_american_date_is_still_named_by_line_and_value(client: Client) -> None:
    body = "date,geo,kpi\n2024-01-02,a,1\n01/02/2024,b,2\n"
    response = await client.post("/v1/geo/datasets", content=body, headers=CSV)
    assert response.status_code == 400
    (param,) = response.json()["invalid_params"]
    assert param["name"] == "line 3, column date"
    assert "'01/02/2024'" in param["reason"]


async def test_a_json_upload_takes_the_date_format_too(client: Client) -> None:
    rows = [
        {"date": "31.12.2023", "geo": "a", "kpi": 1},
        {"date": "31.12.2023", "geo": "b", "kpi": 2},
        {"date": "01.01.2024", "geo": "a", "kpi": 3},
        {"date": "01.01.2024", "geo": "b", "kpi": 4},
    ]
    response = await client.post("/v1/geo/datasets", params={"date_format": "%d.%m.%Y"}, json={"rows": rows})
    assert response.status_code == 201, response.text
    assert (response.json()["first_date"], response.json()["last_date"]) == ("2023-12-31", "2024-01-01")
    wrong = [*rows[:3], {"date": "2024-01-01", "geo": "b", "kpi": 4}]
    refused = await client.post("/v1/geo/datasets", params={"date_format": "%d.%m.%Y"}, json={"rows": wrong})
    assert refused.status_code == 400
    assert refused.json()["invalid_params"][0]["name"] == "rows[3].date"


@pytest.mark.parametrize(
    ("date_format", "reason"),
    [("%m/%d", "does not name the year, month and day"), ("%Q-%d", "is not a strftime format")],
)
async def test_a_format_that_cannot_read_a_whole_date_is_refused_naming_date_format(
    client: Client, date_format: str, reason: str
) -> None:
    body = "date,geo,kpi\n01/02,a,1\n01/02,b,2\n"
    response = await client.post("/v1/geo/datasets", params={"date_format": date_format}, content=body, headers=CSV)
    assert response.status_code == 400
    (param,) = response.json()["invalid_params"]
    assert param["name"] == "date_format"
    assert reason in param["reason"]


def test_the_parser_reads_formatted_dates_block_by_block_as_datetime_does() -> None:
    """The parse functions an append reuses: the same parser, two blocks, lines counted across them."""
    parser = CsvPanelParser("%m/%d/%Y")
    parser.parse_block(b"date,geo,kpi\n12/30/2023,a,1\n12/31/2023,a,2\n")
    parser.parse_block(b"01/01/2024,a,3\n")
    panel = parser.finish()
    expected = [datetime.strptime(d, "%m/%d/%Y").date() for d in ("12/30/2023", "12/31/2023", "01/01/2024")]
    assert panel.days.astype(object).tolist() == expected
    with pytest.raises(InvalidInput) as refused:
        parser.parse_block(b"01/02/2024,a,4\n13/01/2024,a,5\n")
    assert refused.value.invalid_params[0][0] == "line 6, column date"
    check_date_format("%Y-%m-%d")


async def test_an_append_reads_its_dates_in_the_date_format_of_its_own(client: Client) -> None:
    first = "date,geo,kpi\n2024-01-01,a,1\n2024-01-01,b,2\n2024-01-02,a,3\n2024-01-02,b,4\n"
    dataset = (await client.post("/v1/geo/datasets", content=first, headers=CSV)).json()
    csv_rows = "date,geo,kpi\n01/03/2024,a,5\n01/03/2024,b,6\n"
    appended = await client.post(
        f"/v1/geo/datasets/{dataset['id']}/rows", params={"date_format": "%m/%d/%Y"}, content=csv_rows, headers=CSV
    )
    assert appended.status_code == 201, appended.text
    assert appended.json()["dataset"]["last_date"] == "2024-01-03"
    json_rows = {"rows": [{"date": "04.01.2024", "geo": "a", "kpi": 7}, {"date": "04.01.2024", "geo": "b", "kpi": 8}]}
    again = await client.post(
        f"/v1/geo/datasets/{dataset['id']}/rows", params={"date_format": "%d.%m.%Y"}, json=json_rows
    )
    assert again.status_code == 201, again.text
    assert again.json()["dataset"]["last_date"] == "2024-01-04"


async def test_an_append_naming_a_known_market_in_another_case_is_400_naming_its_row(client: Client) -> None:
    first = "date,geo,kpi\n2024-01-01,chicago,1\n2024-01-01,boston,2\n"
    dataset = (await client.post("/v1/geo/datasets", content=first, headers=CSV)).json()
    response = await client.post(
        f"/v1/geo/datasets/{dataset['id']}/rows", content="date,geo,kpi\n2024-01-02,Chicago,3\n", headers=CSV
    )
    assert response.status_code == 400, response.text
    (param,) = response.json()["invalid_params"]
    assert param["name"] == "line 2, column geo"
    assert "'chicago'" in param["reason"]
    versions = (await client.get(f"/v1/geo/datasets/{dataset['id']}/versions")).json()
    assert len(versions["versions"]) == 1  # nothing written
