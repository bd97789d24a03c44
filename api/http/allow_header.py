"""Every ``Allow`` header lists every method of its path.

Litestar answers ``OPTIONS`` (and 405) with an ``Allow`` header, but when several controllers declare
handlers on one path (``/v1/experiments/{experiment_id}``: GET and PATCH in one, DELETE in another) the
route is rebuilt for each and the ``OPTIONS`` handler keeps the methods of the route it was first made
for: ``OPTIONS /v1/experiments/{id}`` said ``Allow: GET, OPTIONS`` though DELETE and PATCH are served
(schemathesis' ``allow_header_conformance``). The header is rewritten from the app's final routes.
"""

from __future__ import annotations

from collections.abc import Mapping

from litestar import Litestar
from litestar.enums import ScopeType
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, Message, Receive, Scope, Send


def methods_by_path(app: Litestar) -> dict[str, str]:
    """Each HTTP route's template (``/v1/jobs/{job_id}``, as the router names it) and its ``Allow`` value (with
    ``HEAD`` wherever ``GET`` is: :mod:`api.http.head_requests` answers it)."""
    return {
        route.path_format: ", ".join(sorted(route.methods | ({"HEAD"} if "GET" in route.methods else set())))
        for route in app.routes
        if isinstance(route, HTTPRoute)
    }


def allow_every_method(allowed: Mapping[str, str], app: ASGIApp) -> ASGIApp:
    """``app`` with each answer's ``Allow`` header set to ``allowed`` for the route it matched."""

    async def with_allow(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start":
                methods = allowed.get(scope.get("path_template") or "")  # set by the router once matched
                headers = list(message.get("headers", []))
                if methods is None:  # a 405: the route was not matched; Litestar's header lists it whole, but HEAD
                    methods = _with_head(next((bytes(v) for n, v in headers if n.lower() == b"allow"), b""))
                if methods is not None and any(name.lower() == b"allow" for name, _ in headers):
                    headers = [(name, value) for name, value in headers if name.lower() != b"allow"]
                    message = {**message, "headers": [*headers, (b"allow", methods.encode("latin-1"))]}
            await send(message)

        await app(scope, receive, send_with_allow)

    return with_allow


def _with_head(allow: bytes) -> str | None:
    """Litestar's ``Allow`` value with ``HEAD`` where ``GET`` is (``None`` without a header)."""
    methods = {method.strip() for method in allow.decode("latin-1").split(",") if method.strip()}
    if not methods:
        return None
    return ", ".join(sorted(methods | ({"HEAD"} if "GET" in methods else set())))
