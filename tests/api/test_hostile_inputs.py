"""Hostile inputs and faults a tester found answering 500: each now a clear 4xx, or a 503 to retry.

Reproductions from issue 12: a body of 100,000 nested ``[``; a power calculation at the extremes of
float64; a CSV upload whose database connection is terminated mid-stream.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import asyncpg
import httpx
import pytest
from litestar import Litestar, get
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.auth.keys import Scope
from api.http.errors import exception_handlers
from api.http.json_depth import MAX_JSON_DEPTH, check_json_depth
from api.settings import Settings
from testkit.database import make_key, with_database
from tests.api.streaming_client import chunked_head, stream_upload, units_with_a_fault
from tests.conftest import app_in_thread

Client = AsyncTestClient[Litestar]
JSON = {"Content-Type": "application/json"}
HOLDOUT = {
    "kind": "holdout",
    "name": "fault",
    "metric": {"kind": "proportion"},
    "channels": [{"name": "meta", "holdout_fraction": 0.1}],
}


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


# --- nesting depth --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/experiments", "/v1/power/holdout", "/v1/geo/datasets"])
async def test_a_body_of_100000_nested_brackets_is_400_naming_the_body(client: Client, path: str) -> None:
    problem = _problem(await client.post(path, content=b"[" * 100_000, headers=JSON), 400)
    assert problem["invalid_params"][0]["name"] == "body"
    assert "deeper than 64" in problem["detail"]


async def test_deep_nesting_is_refused_on_hand_read_json_bodies_too(client: Client) -> None:
    experiment_id = (await client.post("/v1/experiments", json=HOLDOUT)).json()["id"]
    body = b'{"outcomes": ' + b"[" * 10_000
    response = await client.post(f"/v1/experiments/{experiment_id}/outcomes", content=body, headers=JSON)
    assert _problem(response, 400)["invalid_params"][0]["name"] == "body"


def test_nesting_up_to_the_limit_is_accepted_and_brackets_inside_strings_do_not_count() -> None:
    check_json_depth(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH)
    check_json_depth(b'{"name": "' + b"[{" * 1000 + b'\\"[["}')
    with pytest.raises(Exception, match="deeper than"):
        check_json_depth(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))


# --- power at the extremes of float64 -------------------------------------------------------------


async def test_the_reported_power_request_is_400_naming_the_field(client: Client) -> None:
    body = {
        "metric": {"kind": "mean", "baseline": 1e308, "std_dev": 1e308},
        "mde": {"relative": 1e-300},
        "solve_for": "sample_size",
    }
    problem = _problem(await client.post("/v1/power/holdout", json=body), 400)
    assert {p["name"] for p in problem["invalid_params"]} <= {"metric.baseline", "metric.std_dev"}


async def test_a_lift_too_small_for_any_sample_is_400_naming_the_mde(client: Client) -> None:
    body = {
        "metric": {"kind": "mean", "baseline": 1e100, "std_dev": 1e100},
        "mde": {"relative": 1e-300},
        "solve_for": "sample_size",
    }
    problem = _problem(await client.post("/v1/power/holdout", json=body), 400)
    assert problem["invalid_params"][0]["name"] == "mde.relative"
    assert "standard deviations" in problem["detail"]


async def test_a_tiny_absolute_lift_on_a_proportion_is_400_naming_the_mde(client: Client) -> None:
    body = {"metric": {"kind": "proportion", "baseline": 0.05}, "mde": {"absolute": 1e-300}}
    assert _problem(await client.post("/v1/power/holdout", json=body), 400)["invalid_params"][0]["name"] == (
        "mde.absolute"
    )


async def test_a_small_but_detectable_lift_still_gets_its_sample_size(client: Client) -> None:
    body = {"metric": {"kind": "mean", "baseline": 100.0, "std_dev": 40.0}, "mde": {"relative": 1e-4}}
    response = await client.post("/v1/power/holdout", json=body)
    assert response.status_code == 200
    assert response.json()["sample_size"]["total"] > 10**8


# --- a database connection lost mid-upload --------------------------------------------------------


@pytest.fixture
async def isolated_url(server_url: str) -> AsyncIterator[str]:
    """A database of its own, whose connections the test may terminate without disturbing the others."""
    name = f"counterfact_fault_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield with_database(server_url, name)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def _terminate_connections(url: str) -> None:
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'counterfact' AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()


@pytest.fixture
def live_isolated(settings: Settings, isolated_url: str) -> Iterator[str]:
    """The service under uvicorn on the isolated database: real HTTP, so a body really streams."""
    isolated = replace(settings, database_url=isolated_url)
    with app_in_thread(create_app(isolated), isolated) as url:
        yield url


async def test_a_csv_upload_whose_connection_is_terminated_is_503_with_retry_after_and_writes_nothing(
    live_isolated: str, isolated_url: str
) -> None:
    headers = {"Authorization": f"Bearer {await make_key(isolated_url, Scope.ADMIN)}"}
    async with httpx.AsyncClient(base_url=live_isolated, headers=headers, timeout=60) as client:
        experiment_id = (await client.post("/v1/experiments", json=HOLDOUT)).json()["id"]

        async def units() -> AsyncIterator[bytes]:  # 1,000,000 units; the connections die halfway
            yield b"unit\n"
            for batch in range(40):
                if batch == 20:
                    await _terminate_connections(isolated_url)
                yield b"".join(b"user-%d-%d\n" % (batch, i) for i in range(25_000))

        response = await client.post(
            f"/v1/experiments/{experiment_id}/assignments", content=units(), headers={"Content-Type": "text/csv"}
        )
        _problem(response, 503)
        assert response.headers["retry-after"]
        # Nothing of the upload was stored, and the service recovered without a restart.
        summary = await client.get(f"/v1/experiments/{experiment_id}/assignments/summary")
        assert summary.status_code == 200, summary.text
        assert [channel["units"] for channel in summary.json()["channels"]] == [0]


async def test_a_csv_upload_whose_connection_is_terminated_is_answered_and_closed_while_the_client_still_sends(
    live_isolated: str, isolated_url: str
) -> None:
    # A client that keeps streaming after the fault (as httpx does until a write fails): the 503 comes, and
    # the connection closes, without the service reading the rest of the body (issue 22).
    key = await make_key(isolated_url, Scope.ADMIN)
    async with httpx.AsyncClient(base_url=live_isolated, headers={"Authorization": f"Bearer {key}"}) as client:
        experiment_id = (await client.post("/v1/experiments", json=HOLDOUT)).json()["id"]

    async def fault() -> None:
        await _terminate_connections(isolated_url)

    head = chunked_head(f"/v1/experiments/{experiment_id}/assignments", key)
    host, port = live_isolated.removeprefix("http://").split(":")
    streamed = await stream_upload((host, int(port)), head, units_with_a_fault(20, fault))
    assert streamed.status == 503, streamed.answer[:300]
    assert streamed.header("retry-after")
    assert streamed.header("connection") == "close"
    assert streamed.closed
    assert not streamed.body_finished


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ("cannot call Transaction.__aexit__(): the underlying connection is closed", 503),
        ("cannot perform operation: connection is closed", 503),
        ("cannot perform operation: another operation is in progress", 500),
    ],
)
async def test_a_closed_connection_is_503_but_other_driver_misuse_stays_500(message: str, status: int) -> None:
    @get("/boom", sync_to_thread=False)
    def boom() -> None:
        raise asyncpg.InterfaceError(message)

    async with AsyncTestClient(app=Litestar(route_handlers=[boom], exception_handlers=exception_handlers())) as client:
        response = await client.get("/boom")
    _problem(response, status)
    assert ("retry-after" in response.headers) == (status == 503)
