"""Every /v1 operation in the OpenAPI document refuses a missing key (401) and a key below its scope (403).

The operations come from the document the app serves, so an endpoint added later is covered without
editing this file; the scope each one needs comes from the guard's own rule for its handler.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.auth.guard import required_scope
from api.auth.keys import Scope
from api.cli import openapi_document
from testkit.database import make_key

Client = AsyncTestClient[Litestar]
DOCUMENT: dict[str, Any] = openapi_document()
_BELOW = {Scope.WRITE: Scope.READ, Scope.ADMIN: Scope.WRITE}


def _v1_operations() -> list[tuple[str, str, str]]:
    found = []
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            if path.startswith("/v1/"):
                found.append((method.upper(), path, operation["operationId"]))
    return found


OPERATIONS = _v1_operations()


def _concrete(path: str) -> str:
    """The templated path with every parameter filled in (a UUID fits every parameter the API has)."""
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


def _body(method: str) -> dict[str, Any] | None:
    return None if method in ("GET", "DELETE") else {}


def _handler(app: Litestar, operation_id: str, method: str) -> HTTPRouteHandler:
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                if handler.operation_id == operation_id and method in handler.http_methods:
                    return handler
    raise LookupError(operation_id)


def _required(app: Litestar, operation_id: str, method: str) -> Scope:
    return required_scope(_handler(app, operation_id, method), method)


_APP = create_app()
# Read is the lowest scope: only operations that need more can be refused a key below theirs.
ABOVE_READ = [operation for operation in OPERATIONS if _required(_APP, operation[2], operation[0]) is not Scope.READ]


def test_the_document_lists_v1_operations_and_each_requires_the_bearer_scheme() -> None:
    assert len(OPERATIONS) >= 15
    for method, path, _ in OPERATIONS:
        operation = DOCUMENT["paths"][path][method.lower()]
        assert operation["security"] == [{"apiKey": []}], f"{method} {path}"
        assert {"401", "403", "429"} <= set(operation["responses"]), f"{method} {path}"


@pytest.mark.parametrize(("method", "path", "operation_id"), OPERATIONS, ids=[o[2] for o in OPERATIONS])
async def test_every_v1_operation_refuses_a_request_without_a_key(
    client: Client, method: str, path: str, operation_id: str
) -> None:
    del client.headers["Authorization"]
    response = await client.request(method, _concrete(path), json=_body(method))
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path", "operation_id"), ABOVE_READ, ids=[o[2] for o in ABOVE_READ])
async def test_every_v1_operation_refuses_a_key_below_its_scope(
    client: Client, app: Litestar, database_url: str, method: str, path: str, operation_id: str
) -> None:
    needed = _required(app, operation_id, method)
    client.headers["Authorization"] = f"Bearer {await make_key(database_url, _BELOW[needed])}"
    response = await client.request(method, _concrete(path), json=_body(method))
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert needed.value in response.json()["detail"]


@pytest.mark.parametrize(("method", "path", "operation_id"), OPERATIONS, ids=[o[2] for o in OPERATIONS])
async def test_every_v1_operation_lets_a_key_with_its_scope_through(
    client: Client, app: Litestar, database_url: str, method: str, path: str, operation_id: str
) -> None:
    needed = _required(app, operation_id, method)
    client.headers["Authorization"] = f"Bearer {await make_key(database_url, needed)}"
    response = await client.request(method, _concrete(path), json=_body(method))
    assert response.status_code not in (401, 403)


def test_the_open_operations_are_only_health() -> None:
    open_paths = {path for path, item in DOCUMENT["paths"].items() for op in item.values() if not op.get("security")}
    assert open_paths == {"/health"}
