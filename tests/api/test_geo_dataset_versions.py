"""Geo datasets grow: appends as numbered versions, collisions and corrections, reads as of a version, the list."""

from __future__ import annotations

from typing import Any

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient

Client = AsyncTestClient[Litestar]
CSV = {"Content-Type": "text/csv"}


def _rows(geos: tuple[str, ...], days: range, kpi: float = 100.0) -> list[dict[str, Any]]:
    return [
        {"date": f"2024-01-{day:02d}", "geo": geo, "kpi": kpi + day + 10 * g, "spend": 5.0}
        for g, geo in enumerate(geos)
        for day in days
    ]


async def _dataset(client: Client, days: range = range(5, 11)) -> str:
    response = await client.post("/v1/geo/datasets", json={"name": "Daily sales", "rows": _rows(("a", "b", "c"), days)})
    assert response.status_code == 201, response.text
    dataset_id: str = response.json()["id"]
    return dataset_id


async def _append(client: Client, dataset_id: str, rows: list[dict[str, Any]], **params: str) -> Any:
    return await client.post(f"/v1/geo/datasets/{dataset_id}/rows", json={"rows": rows}, params=params)


async def _stored(database_url: str, dataset_id: str) -> list[tuple[str, str, float, int, int | None]]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT geo, date::text AS date, kpi, version_added, version_replaced FROM geo_observations "
            "WHERE dataset_id = $1 ORDER BY geo, date, version_added",
            dataset_id,
        )
    finally:
        await connection.close()
    return [(r["geo"], r["date"], r["kpi"], r["version_added"], r["version_replaced"]) for r in rows]


async def test_an_append_is_the_next_version_and_the_dataset_shows_it(client: Client) -> None:
    dataset_id = await _dataset(client)
    response = await _append(client, dataset_id, _rows(("a", "b", "c"), range(11, 13)))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["appended"]["version"] == 2
    assert body["appended"]["rows_added"] == 6 and body["appended"]["rows_replaced"] == 0
    assert (body["appended"]["added_first_date"], body["appended"]["added_last_date"]) == ("2024-01-11", "2024-01-12")
    assert response.headers["Location"] == f"/v1/geo/datasets/{dataset_id}?dataset_version=2"
    latest = (await client.get(f"/v1/geo/datasets/{dataset_id}")).json()
    assert (latest["version"], latest["latest_version"]) == (2, 2)
    assert (latest["first_date"], latest["last_date"], latest["row_count"], latest["date_count"]) == (
        "2024-01-05",
        "2024-01-12",
        24,
        8,
    )


async def test_an_earlier_version_reads_as_it_was(client: Client) -> None:
    dataset_id = await _dataset(client)
    await _append(client, dataset_id, _rows(("a", "b", "c"), range(11, 13)))
    first = (await client.get(f"/v1/geo/datasets/{dataset_id}", params={"dataset_version": 1})).json()
    assert (first["version"], first["latest_version"], first["last_date"], first["row_count"]) == (
        1,
        2,
        "2024-01-10",
        18,
    )
    series = (await client.get(f"/v1/geo/datasets/{dataset_id}/series", params={"dataset_version": 1})).json()
    assert series["dataset_version"] == 1 and len(series["rows"]) == 18


async def test_a_version_the_dataset_does_not_have_is_400_naming_dataset_version(client: Client) -> None:
    dataset_id = await _dataset(client)
    response = await client.get(f"/v1/geo/datasets/{dataset_id}", params={"dataset_version": 2})
    assert response.status_code == 400
    assert [p["name"] for p in response.json()["invalid_params"]] == ["dataset_version"]


async def test_appending_existing_market_dates_is_409_naming_them_and_writes_nothing(
    client: Client, database_url: str
) -> None:
    dataset_id = await _dataset(client)
    before = await _stored(database_url, dataset_id)
    rows = _rows(("a", "b", "c"), range(9, 13))  # 9 and 10 are stored already
    response = await _append(client, dataset_id, rows)
    assert response.status_code == 409, response.text
    problem = response.json()
    assert "6 appended market-date(s)" in problem["detail"]
    assert "'a' on 2024-01-09" in problem["detail"]
    assert problem["invalid_params"][0] == {"name": "rows[0].date", "reason": "'a' on 2024-01-09 is already stored"}
    assert len(problem["invalid_params"]) == 5
    assert await _stored(database_url, dataset_id) == before
    assert (await client.get(f"/v1/geo/datasets/{dataset_id}/versions")).json()["versions"][-1]["version"] == 1


async def test_dates_before_the_first_that_collide_are_refused_too(client: Client, database_url: str) -> None:
    dataset_id = await _dataset(client)
    before = await _stored(database_url, dataset_id)
    response = await _append(client, dataset_id, _rows(("a",), range(1, 6)))  # 5 is stored
    assert response.status_code == 409
    assert "'a' on 2024-01-05" in response.json()["detail"]
    assert await _stored(database_url, dataset_id) == before


async def test_dates_before_the_first_are_a_longer_history(client: Client) -> None:
    dataset_id = await _dataset(client)
    response = await _append(client, dataset_id, _rows(("a", "b", "c"), range(1, 5)))
    assert response.status_code == 201, response.text
    assert response.json()["dataset"]["first_date"] == "2024-01-01"
    assert response.json()["dataset"]["date_count"] == 10


async def test_replace_records_corrections_and_the_earlier_values_stay_readable(
    client: Client, database_url: str
) -> None:
    dataset_id = await _dataset(client)
    corrected = [{"date": "2024-01-10", "geo": "a", "kpi": 999.0}]
    response = await _append(client, dataset_id, corrected, on_conflict="replace")
    assert response.status_code == 201, response.text
    assert response.json()["appended"]["rows_replaced"] == 1
    stored = [r for r in await _stored(database_url, dataset_id) if r[:2] == ("a", "2024-01-10")]
    assert stored == [("a", "2024-01-10", 110.0, 1, 2), ("a", "2024-01-10", 999.0, 2, None)]

    async def kpi_at(version: int) -> float:
        series = await client.get(
            f"/v1/geo/datasets/{dataset_id}/series", params={"geo": "a", "dataset_version": version}
        )
        value: float = next(r["kpi"] for r in series.json()["rows"] if r["date"] == "2024-01-10")
        return value

    assert (await kpi_at(1), await kpi_at(2)) == (110.0, 999.0)
    assert (await client.get(f"/v1/geo/datasets/{dataset_id}")).json()["row_count"] == 18


async def test_a_new_market_is_allowed_and_its_earlier_dates_are_gaps(client: Client) -> None:
    dataset_id = await _dataset(client)
    response = await _append(client, dataset_id, _rows(("d",), range(9, 11)))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["appended"]["new_geos"] == ["d"]
    assert body["dataset"]["geos"] == ["a", "b", "c", "d"]
    quality = body["dataset"]["quality"]
    assert quality["missing"] == [
        {"geo": "d", "missing_count": 4, "first_missing": ["2024-01-05", "2024-01-06", "2024-01-07", "2024-01-08"]}
    ]


async def test_a_csv_append_reads_the_uploads_headers_and_streams(client: Client) -> None:
    dataset_id = await _dataset(client)
    body = "location,Y,date\na,1.5,2024-01-11\nb,2.5,2024-01-11\n"  # GeoLift's column names
    response = await client.post(f"/v1/geo/datasets/{dataset_id}/rows", content=body, headers=CSV)
    assert response.status_code == 201, response.text
    assert response.json()["appended"]["rows_added"] == 2
    series = (await client.get(f"/v1/geo/datasets/{dataset_id}/series", params={"geo": "b"})).json()
    assert series["rows"][-1] == {"date": "2024-01-11", "geo": "b", "kpi": 2.5, "spend": None}


async def test_a_csv_append_repeating_a_market_date_is_400_naming_the_line(client: Client, database_url: str) -> None:
    dataset_id = await _dataset(client)
    before = await _stored(database_url, dataset_id)
    body = "date,geo,kpi\n2024-01-11,a,1\n2024-01-11,a,2\n"
    response = await client.post(f"/v1/geo/datasets/{dataset_id}/rows", content=body, headers=CSV)
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "line 3, column date"
    assert await _stored(database_url, dataset_id) == before


async def test_a_csv_append_colliding_is_409_naming_the_line(client: Client) -> None:
    dataset_id = await _dataset(client)
    body = "date,geo,kpi\n2024-01-11,a,1\n2024-01-10,b,2\n"
    response = await client.post(f"/v1/geo/datasets/{dataset_id}/rows", content=body, headers=CSV)
    assert response.status_code == 409
    assert response.json()["invalid_params"] == [
        {"name": "line 3, column date", "reason": "'b' on 2024-01-10 is already stored"}
    ]


async def test_a_bad_value_in_an_append_is_400_naming_row_and_column(client: Client) -> None:
    dataset_id = await _dataset(client)
    response = await _append(client, dataset_id, [{"date": "2024-01-11", "geo": "a", "kpi": -1}])
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"].startswith("rows[0].kpi")


async def test_appending_to_an_unknown_dataset_is_404(client: Client) -> None:
    response = await _append(client, "00000000-0000-4000-8000-000000000000", _rows(("a",), range(1, 2)))
    assert response.status_code == 404


async def test_a_retried_append_with_an_idempotency_key_adds_nothing(client: Client, database_url: str) -> None:
    dataset_id = await _dataset(client)
    path = f"/v1/geo/datasets/{dataset_id}/rows"
    rows = {"rows": _rows(("a", "b"), range(11, 12))}
    first = await client.post(path, json=rows, headers={"Idempotency-Key": "day-11"})
    again = await client.post(path, json=rows, headers={"Idempotency-Key": "day-11"})
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert first.json()["appended"]["idempotency_key"] == "day-11"
    versions = (await client.get(f"/v1/geo/datasets/{dataset_id}/versions")).json()["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    assert len(await _stored(database_url, dataset_id)) == 20


async def test_versions_list_what_each_added_and_who_wrote_it(client: Client) -> None:
    dataset_id = await _dataset(client)
    await _append(client, dataset_id, _rows(("a", "b", "c"), range(11, 12)))
    await _append(client, dataset_id, [{"date": "2024-01-11", "geo": "a", "kpi": 1.0}], on_conflict="replace")
    versions = (await client.get(f"/v1/geo/datasets/{dataset_id}/versions")).json()["versions"]
    assert [(v["version"], v["rows_added"], v["rows_replaced"], v["row_count"]) for v in versions] == [
        (1, 18, 0, 18),
        (2, 3, 0, 21),
        (3, 1, 1, 21),
    ]
    assert len({v["created_by"] for v in versions}) == 1 and versions[0]["created_by"] is not None
    assert versions[0]["created_at"] < versions[1]["created_at"] < versions[2]["created_at"]


async def test_an_append_is_in_the_datasets_audit_trail(client: Client) -> None:
    dataset_id = await _dataset(client)
    await _append(client, dataset_id, _rows(("a", "b", "c"), range(11, 12)))
    events = (await client.get(f"/v1/geo/datasets/{dataset_id}/events")).json()["items"]
    appended = [e for e in events if e["action"] == "rows_appended"]
    assert len(appended) == 1
    assert appended[0]["details"]["version"] == 2 and appended[0]["details"]["rows"] == 3


async def test_deleting_a_dataset_removes_every_version_and_keeps_the_trail(client: Client, database_url: str) -> None:
    dataset_id = await _dataset(client)
    await _append(client, dataset_id, _rows(("a", "b", "c"), range(11, 12)))
    response = await client.delete(f"/v1/geo/datasets/{dataset_id}")
    assert response.status_code == 200
    assert response.json()["rows_deleted"]["geo_dataset_versions"] == 2
    assert await _stored(database_url, dataset_id) == []
    assert (await client.get(f"/v1/geo/datasets/{dataset_id}/versions")).status_code == 404
    events = (await client.get(f"/v1/geo/datasets/{dataset_id}/events")).json()["items"]
    assert {"created", "rows_appended", "deleted"} <= {e["action"] for e in events}


async def test_datasets_are_listed_newest_first_paged_and_filtered_by_name(client: Client) -> None:
    names = ["Sales east", "Sales west", "Signups"]
    for name in names:
        response = await client.post("/v1/geo/datasets", json={"name": name, "rows": _rows(("a", "b"), range(1, 3))})
        assert response.status_code == 201
    first = (await client.get("/v1/geo/datasets", params={"limit": 2})).json()
    assert [d["name"] for d in first["items"]] == ["Signups", "Sales west"]
    second = (await client.get("/v1/geo/datasets", params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert [d["name"] for d in second["items"]] == ["Sales east"] and second["next_cursor"] is None
    sales = (await client.get("/v1/geo/datasets", params={"name": "SALES"})).json()
    assert [d["name"] for d in sales["items"]] == ["Sales west", "Sales east"]
    item = sales["items"][0]
    assert (item["versions"], item["geos"], item["first_date"], item["last_date"]) == (
        1,
        ["a", "b"],
        "2024-01-01",
        "2024-01-02",
    )
