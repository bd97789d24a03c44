"""Streamed bodies are cut into lines in linear time, with the length of a line capped; every JSON-or-CSV
upload is capped by the settings the app was created with."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date, timedelta

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.auth.keys import Scope
from api.http.errors import InvalidInput
from api.http.request_bodies import complete_lines, line_batches
from api.settings import Settings
from testkit.database import make_key

Client = AsyncTestClient[Litestar]


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_lines_split_across_chunks_are_joined() -> None:
    seen = [
        line async for lines in complete_lines(_chunks(b"ab", b"c\nde", b"f\ng"), max_line_bytes=10) for line in lines
    ]
    assert seen == [b"abc", b"def", b"g"]


async def test_a_line_growing_past_the_limit_over_many_chunks_is_refused_naming_it() -> None:
    with pytest.raises(InvalidInput) as refused:
        async for _ in complete_lines(_chunks(b"h\nx", *([b"y" * 100] * 50)), max_line_bytes=1000):
            pass
    assert refused.value.invalid_params[0][0] == "line 2"


async def test_batches_never_end_on_blank_lines_that_may_end_the_body() -> None:
    body = _chunks(b"h\n1\n2\n\n\n", b"3\n\n")
    batches = [batch async for batch in line_batches(body, batch_lines=3, max_line_bytes=100)]
    assert batches == [(1, [b"h", b"1", b"2"]), (4, [b"", b"", b"3"])]


# --- the caps of the settings the app was created with, on every JSON-or-CSV upload -----------------------

JSON_CAP = 1024
STREAM_CAP = 4096
UPLOAD_ROUTES = ["assignments", "outcomes", "geo datasets"]


@pytest.fixture
async def capped_client(settings: Settings) -> AsyncIterator[Client]:
    """A client on an app created with small body caps (the environment's are left alone)."""
    app = create_app(replace(settings, max_body_bytes=JSON_CAP, max_stream_bytes=STREAM_CAP))
    async with AsyncTestClient(app=app) as client:
        assert settings.database_url is not None
        client.headers["Authorization"] = f"Bearer {await make_key(settings.database_url, Scope.ADMIN)}"
        yield client


async def _upload_path(client: Client, route: str) -> str:
    if route == "geo datasets":
        return "/v1/geo/datasets"
    experiment = {
        "kind": "holdout",
        "name": "capped uploads",
        "metric": {"kind": "mean"},
        "channels": [{"name": "meta", "holdout_fraction": 0.5}],
    }
    created = await client.post("/v1/experiments", json=experiment)
    assert created.status_code == 201, created.text
    return f"/v1/experiments/{created.json()['id']}/{route}"


def _csv_of_size(route: str, size: int) -> bytes:
    """A valid CSV body for the route of at least ``size`` bytes."""
    if route == "geo datasets":
        header, rows = (
            "date,geo,kpi\n",
            (f"{date(2021, 1, 1) + timedelta(days=d)},{g},{d}\n" for d in range(10**4) for g in "ab"),
        )
    elif route == "outcomes":
        header, rows = "unit,value\n", (f"u{i},{i % 7}\n" for i in range(10**5))
    else:
        header, rows = "unit\n", (f"u{i}\n" for i in range(10**5))
    body = header
    for row in rows:
        if len(body) >= size:
            break
        body += row
    return body.encode()


def _json_of_size(route: str, size: int) -> bytes:
    """A JSON body for the route of at least ``size`` bytes (valid but for its size)."""
    if route == "geo datasets":
        rows = [{"date": "2021-01-01", "geo": f"g{i}", "kpi": i} for i in range(size // 30 + 1)]
        return json.dumps({"rows": rows}).encode()
    if route == "outcomes":
        return json.dumps({"outcomes": [{"unit": f"u{i}", "value": 1} for i in range(size // 20 + 1)]}).encode()
    return json.dumps({"units": [f"u{i}" for i in range(size // 6 + 1)]}).encode()


@pytest.mark.parametrize("route", UPLOAD_ROUTES)
async def test_a_csv_upload_past_the_injected_stream_cap_is_refused_with_413(capped_client: Client, route: str) -> None:
    path = await _upload_path(capped_client, route)
    body = _csv_of_size(route, STREAM_CAP + 1)
    response = await capped_client.post(path, content=body, headers={"Content-Type": "text/csv"})
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert str(STREAM_CAP) in response.json()["detail"]


@pytest.mark.parametrize("route", UPLOAD_ROUTES)
async def test_a_csv_upload_understating_its_length_is_refused_once_its_bytes_pass_the_injected_stream_cap(
    capped_client: Client, route: str
) -> None:
    path = await _upload_path(capped_client, route)
    body = _csv_of_size(route, STREAM_CAP + 1)
    headers = {"Content-Type": "text/csv", "Content-Length": str(STREAM_CAP // 2)}
    response = await capped_client.post(path, content=body, headers=headers)
    assert response.status_code == 413, response.text


@pytest.mark.parametrize("route", UPLOAD_ROUTES)
async def test_a_json_upload_past_the_injected_body_cap_is_refused_with_413(capped_client: Client, route: str) -> None:
    path = await _upload_path(capped_client, route)
    response = await capped_client.post(
        path, content=_json_of_size(route, JSON_CAP + 1), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert str(JSON_CAP) in response.json()["detail"]


@pytest.mark.parametrize("route", UPLOAD_ROUTES)
async def test_a_csv_upload_under_the_injected_stream_cap_is_stored_though_past_the_json_cap(
    capped_client: Client, route: str
) -> None:
    path = await _upload_path(capped_client, route)
    body = _csv_of_size(route, 2 * JSON_CAP)
    assert JSON_CAP < len(body) <= STREAM_CAP
    response = await capped_client.post(path, content=body, headers={"Content-Type": "text/csv"})
    assert response.status_code in (200, 201), response.text
