"""Every failure leaves as RFC 9457 problem+json: oversized bodies, unknown routes, unexpected errors."""

from __future__ import annotations

import logging
from dataclasses import replace

import asyncpg
import pytest
from litestar import Litestar, get
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.auth.keys import Scope
from api.http.errors import exception_handlers
from api.settings import Settings
from testkit.database import make_key
from tests.conftest import LogCollector

Client = AsyncTestClient[Litestar]


async def test_an_oversized_body_is_413_problem_json(settings: Settings) -> None:
    app = create_app(replace(settings, max_body_bytes=1024))
    async with AsyncTestClient(app=app) as client:
        assert settings.database_url is not None
        client.headers["Authorization"] = f"Bearer {await make_key(settings.database_url, Scope.ADMIN)}"
        response = await client.post(
            "/v1/experiments", content=b"[" + b"1," * 2000 + b"1]", headers={"content-type": "application/json"}
        )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_an_unknown_path_is_404_problem_json(client: Client) -> None:
    response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_an_id_that_is_not_a_uuid_is_404_saying_ids_are_uuids(client: Client) -> None:
    response = await client.get("/v1/experiments/not-a-uuid")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "GET /v1/experiments/not-a-uuid" in response.json()["detail"]
    assert "UUID" in response.json()["detail"]


async def test_a_missing_resource_keeps_its_own_404_detail(client: Client) -> None:
    response = await client.get("/v1/experiments/0d6c8f7e-3a55-4c1e-9a51-2f0a4f6a9b10")
    assert response.status_code == 404
    assert "0d6c8f7e-3a55-4c1e-9a51-2f0a4f6a9b10" in response.json()["detail"]


async def test_a_wrong_method_is_405_problem_json(client: Client) -> None:
    response = await client.delete("/health")
    assert response.status_code == 405
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/v1/experiments", "GET, HEAD, OPTIONS, POST"),
        ("/v1/experiments/3f0c8f7e-3a55-4c1e-9a51-2f0a4f6a9b10", "DELETE, GET, HEAD, OPTIONS, PATCH"),
        ("/v1/geo/datasets/3f0c8f7e-3a55-4c1e-9a51-2f0a4f6a9b10", "DELETE, GET, HEAD, OPTIONS"),
        ("/v1/jobs/3f0c8f7e-3a55-4c1e-9a51-2f0a4f6a9b10", "DELETE, GET, HEAD, OPTIONS"),
    ],
)
async def test_options_lists_every_method_of_a_path_served_by_several_controllers(
    client: Client, path: str, allowed: str
) -> None:
    # schemathesis' allow_header_conformance: Litestar's OPTIONS kept the methods of the first controller only
    response = await client.options(path)
    assert response.status_code == 204
    assert response.headers["allow"] == allowed


async def test_a_405_lists_every_method_of_the_path(client: Client) -> None:
    response = await client.put("/v1/experiments/3f0c8f7e-3a55-4c1e-9a51-2f0a4f6a9b10")
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"DELETE", "GET", "HEAD", "OPTIONS", "PATCH"}


async def test_an_unexpected_failure_is_500_with_an_instance_id_logged_and_no_leak(settings: Settings) -> None:
    @get("/boom", include_in_schema=False)
    async def boom() -> None:
        raise RuntimeError("secret internals")

    app = create_app(settings)
    app.register(boom)
    collected = LogCollector()
    logging.getLogger("counterfact.errors").addHandler(collected)
    try:
        async with AsyncTestClient(app=app) as client:
            response = await client.get("/boom")
    finally:
        logging.getLogger("counterfact.errors").removeHandler(collected)
    problem = response.json()
    assert response.status_code == 500
    assert "secret internals" not in response.text
    assert problem["instance"].startswith("urn:uuid:")
    assert any(getattr(r, "instance", None) == problem["instance"] and r.exc_info for r in collected.records)


@pytest.mark.parametrize(
    ("error", "status", "retry_after"),
    [
        (asyncpg.exceptions.SerializationError("could not serialize access"), 503, "1"),
        (asyncpg.exceptions.DeadlockDetectedError("deadlock detected"), 503, "1"),
        (asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout"), 503, "5"),
        (asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"), 503, "5"),
        (ConnectionRefusedError(111, "Connection refused"), 503, "5"),
    ],
)
async def test_database_failures_are_retryable_problems_not_500s(
    error: Exception, status: int, retry_after: str
) -> None:
    @get("/boom", sync_to_thread=False)
    def boom() -> None:
        raise error

    app = Litestar(route_handlers=[boom], exception_handlers=exception_handlers())
    async with AsyncTestClient(app=app) as client:
        response = await client.get("/boom")
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["retry-after"] == retry_after
    assert "instance" not in response.json()


async def test_a_missing_required_field_is_400_naming_that_field(client: Client) -> None:
    response = await client.post("/v1/power/holdout", json={"mde": {"relative": 0.1}})
    assert response.status_code == 400
    assert [p["name"] for p in response.json()["invalid_params"]] == ["metric"]


async def test_a_missing_nested_field_is_named_by_its_path(client: Client) -> None:
    body = {"kind": "holdout", "name": "x", "metric": {"kind": "proportion"}, "channels": [{"name": "meta"}]}
    response = await client.post("/v1/experiments", json=body)
    assert response.status_code == 400
    assert [p["name"] for p in response.json()["invalid_params"]] == ["channels[0].holdout_fraction"]


async def test_a_query_parameter_given_twice_is_400_naming_it(client: Client) -> None:
    # schemathesis' negative_data_rejection: ?status=null&status=null listed every experiment
    response = await client.get("/v1/experiments?status=draft&status=running")
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "status"


async def test_null_for_an_enum_query_parameter_is_400_not_absent(client: Client) -> None:
    response = await client.get("/v1/experiments?status=null")
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "status"


async def test_null_for_a_string_query_parameter_is_the_string(client: Client) -> None:
    response = await client.get("/v1/experiments?cursor=null")
    assert response.json()["invalid_params"][0]["reason"] == "is not a cursor this service issued"


async def test_an_unknown_query_parameter_is_400_naming_it(client: Client) -> None:
    # schemathesis' negative_data_rejection: ?kind=geo&=null listed the geo experiments
    response = await client.get("/v1/experiments?kind=geo&confidence=0.9")
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "confidence"


async def test_options_with_a_query_string_still_lists_the_methods(client: Client) -> None:
    response = await client.options("/v1/experiments?status=running")  # as a CORS preflight sends it
    assert response.status_code == 204
    assert response.headers["allow"] == "GET, HEAD, OPTIONS, POST"


async def test_a_header_or_dependency_name_in_the_query_string_is_400_as_unknown(client: Client) -> None:
    for query in ("prefer=respond-async", "pool=1", "idempotency_key=x"):
        response = await client.get(f"/v1/experiments?{query}")
        assert response.status_code == 400, query
        assert response.json()["invalid_params"][0]["reason"] == "is not a query parameter of this operation"


async def test_repeated_parameters_an_endpoint_does_not_read_are_left_alone_outside_v1(client: Client) -> None:
    assert (await client.get("/health?utm=a&utm=b")).status_code == 200
