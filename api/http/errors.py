"""Domain errors and their mapping to RFC 9457 problem details (``application/problem+json``).

Handlers and services raise the small exception tree below; :func:`exception_handlers` maps those,
Litestar's own HTTP errors and anything unexpected to one problem document shape, in one place.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from stats.errors import InvalidProblem

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://counterfact.dev/problems/"

logger = logging.getLogger("counterfact.errors")


class InvalidParam(msgspec.Struct, frozen=True):
    """One offending input: where it is and why it was refused."""

    name: str
    reason: str


class Problem(msgspec.Struct, frozen=True, omit_defaults=True):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    invalid_params: list[InvalidParam] | None = msgspec.field(default=None, name="invalid_params")


class DomainError(Exception):
    """Base of the errors a request can end in; each subclass fixes the HTTP status (its problem type and
    title are the status's, from one table: :func:`problem_for_exception`)."""

    status_code: int = 400

    def __init__(self, detail: str, invalid_params: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.invalid_params = list(invalid_params)


class InvalidInput(DomainError):
    """The request is well-formed but one of its values cannot be used (400)."""


class NotFound(DomainError):
    """The resource named in the path does not exist (404)."""

    status_code = 404


class Conflict(DomainError):
    """The request conflicts with the resource's current state (409)."""

    status_code = 409


class Unprocessable(DomainError):
    """The resource's data exist but cannot be expressed as asked, for a stated reason (422)."""

    status_code = 422


class IdempotencyKeyReused(DomainError):
    """An ``Idempotency-Key`` already used by this API key with another request body (422)."""

    status_code = 422

    def __init__(self, reason: str = "was already used with another body") -> None:
        super().__init__(f"Idempotency-Key: {reason}", [("Idempotency-Key", reason)])


class UnsupportedMediaType(DomainError):
    """The request body's content type is not one this operation reads (415)."""

    status_code = 415


class ServiceUnavailable(DomainError):
    """A dependency (the database) cannot be reached right now (503)."""

    status_code = 503


def invalid_field(field: str, reason: str) -> InvalidInput:
    """A 400 naming one field and the reason it was refused."""
    return InvalidInput(f"{field}: {reason}", [(field, reason)])


_TITLES: Mapping[int, tuple[str, str]] = {
    400: ("invalid-input", "Invalid input"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("unprocessable-content", "Unprocessable content"),
    429: ("too-many-requests", "Too many requests"),
    500: ("internal-error", "Internal server error"),
    503: ("service-unavailable", "Service unavailable"),
}


def problem_response(
    status: int,
    detail: str,
    invalid_params: Sequence[tuple[str, str]] = (),
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response[Problem]:
    """Build the problem+json response for ``status``."""
    problem = _problem(status, detail, invalid_params, instance)
    return Response(problem, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=dict(headers or {}))


_MISSING_FIELD = re.compile(r"^Object missing required field `([^`]+)`")


def _field_path_from_key(key: str | None, message: str) -> str:
    """Extract the JSON path msgspec names (``at `$.metric.baseline```) as ``metric.baseline``; a missing
    required field is named itself (``metric.baseline``, not the object that lacks it)."""
    marker = "at `$"
    path: str | None = None
    if marker in message:
        path = message.split(marker, 1)[1].split("`", 1)[0].lstrip(".")
    elif key and key not in ("data", "body"):  # Litestar moved msgspec's path into the key
        path = key
    missing = _MISSING_FIELD.match(message)
    if missing is not None:
        return f"{path}.{missing.group(1)}" if path else missing.group(1)
    if path is not None:
        return path or "body"
    return key or "body"


def _validation_params(exc: ValidationException) -> list[tuple[str, str]]:
    extra = exc.extra if isinstance(exc.extra, list) else []
    params: list[tuple[str, str]] = []
    for item in extra:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "invalid value"))
        key = item.get("key")
        source = item.get("source")
        field = _field_path_from_key(str(key) if key else None, message)
        reason = message.split(" - at `$", 1)[0]
        if source and source not in ("body",) and key:
            field = str(key)
        params.append((field, reason))
    return params


def _handle_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Problem]:
    params = _validation_params(exc)
    if params:
        detail = "; ".join(f"{name}: {reason}" for name, reason in params)
    else:
        detail = str(exc.detail or "The request could not be validated")
    return problem_response(400, detail, params)


def _problem(status: int, detail: str, params: Sequence[tuple[str, str]] = (), instance: str | None = None) -> Problem:
    slug, title = _TITLES.get(status, ("error", "Error"))
    return Problem(
        type=PROBLEM_TYPE_BASE + slug,
        title=title,
        status=status,
        detail=detail,
        instance=instance,
        invalid_params=[InvalidParam(name=n, reason=r) for n, r in params] or None,
    )


CONTENTION = (asyncpg.exceptions.TransactionRollbackError,)
TIMEOUT = (asyncpg.exceptions.QueryCanceledError,)
UNREACHABLE = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    ConnectionError,
    TimeoutError,
)


def _connection_closed(exc: BaseException) -> bool:
    """asyncpg's client-side errors for a connection the server closed under the work: ``InterfaceError``
    once the transaction tries to end, ``InternalClientError`` ("cannot switch to state …; another operation
    is in progress") when the next statement meets the broken protocol. Any other client-side error is a
    misuse of the driver: a bug."""
    text = str(exc)
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        return "cannot switch to state" in text
    return isinstance(exc, asyncpg.exceptions.InterfaceError) and (
        "connection is closed" in text or "connection was closed" in text
    )


def problem_for_exception(exc: BaseException, where: str = "") -> tuple[Problem, dict[str, str]]:
    """The one mapping from an exception to its problem document (and headers), for requests and jobs alike.

    Domain errors keep their status; numerical dead ends (:class:`InvalidProblem`) are 400 naming the
    field; database contention, timeouts and outages are 503 with ``Retry-After`` (nothing was
    written); anything else is a 500 whose ``instance`` id is logged with the stack.
    """
    if isinstance(exc, DomainError):
        return _problem(exc.status_code, exc.detail, exc.invalid_params), {}
    if isinstance(exc, InvalidProblem):
        return _problem(400, f"{exc.field}: {exc.reason}", [(exc.field, exc.reason)]), {}
    if isinstance(exc, CONTENTION):
        logger.warning("transaction rolled back by the database: %s", exc, extra={"path": where})
        detail = (
            "A concurrent request changed the same data and this one was rolled back; nothing was written. Retry it."
        )
        return _problem(503, detail), {"Retry-After": "1"}
    if isinstance(exc, TIMEOUT):
        logger.warning("statement canceled: %s", exc, extra={"path": where})
        detail = "The database took too long to answer and the request was cancelled; nothing was written. Retry later."
        return _problem(503, detail), {"Retry-After": "5"}
    if isinstance(exc, UNREACHABLE) or _connection_closed(exc):
        logger.warning("database unreachable: %s", exc, extra={"path": where})
        return _problem(503, "The database cannot be reached right now. Retry later."), {"Retry-After": "5"}
    instance = f"urn:uuid:{uuid.uuid4()}"
    logger.error("unhandled error", exc_info=exc, extra={"instance": instance, "path": where})
    detail = "An unexpected error occurred. Quote the instance id when you report it."
    return _problem(HTTP_500_INTERNAL_SERVER_ERROR, detail, instance=instance), {}


def _handle_mapped(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    problem, headers = problem_for_exception(exc, f"{request.method} {request.url.path}")
    return Response(problem, status_code=problem.status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _handle_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Problem]:
    status = exc.status_code
    if status >= 500:
        return _handle_mapped(request, exc)
    detail = str(exc.detail) if exc.detail else _TITLES.get(status, ("", "Error"))[1]
    if isinstance(exc, NotFoundException) and detail == "Not Found":  # the router's: no route matched
        detail = (
            f"No endpoint at {request.method} {request.url.path}: check the path (ids in paths are UUIDs, "
            "e.g. /v1/experiments/0d6c8f7e-3a55-4c1e-9a51-2f0a4f6a9b10) and GET /schema for every endpoint"
        )
    headers = dict(exc.headers) if exc.headers else None
    return problem_response(status, detail, headers=headers)


def exception_handlers() -> dict[type[Exception] | int, Any]:
    """The app-wide exception handlers: every error leaves as problem+json."""
    return {
        ValidationException: _handle_validation,
        DomainError: _handle_mapped,
        InvalidProblem: _handle_mapped,
        **{kind: _handle_mapped for kind in (*CONTENTION, *TIMEOUT, *UNREACHABLE)},
        asyncpg.exceptions.InterfaceError: _handle_mapped,
        asyncpg.exceptions.InternalClientError: _handle_mapped,
        NotFoundException: _handle_http,
        HTTPException: _handle_http,
        Exception: _handle_mapped,
    }


_DESCRIPTIONS: Mapping[int, str] = {
    400: "Malformed JSON or a value that cannot be used; `invalid_params` names each field and why.",
    404: "No resource with that id.",
    409: "The request conflicts with the resource's current state.",
    413: "The request body is larger than the configured cap.",
    415: "The request body's content type is not one this operation reads.",
    422: "The stored data cannot be expressed as asked; `detail` and `invalid_params` say why.",
    500: "Unexpected failure; `instance` identifies the logged error.",
    503: "The database cannot be reached, timed out, or rolled this request back for a concurrent one; nothing "
    "was written. Retry after `Retry-After` seconds.",
}


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI response declarations for the given error statuses, all with the problem schema."""
    example = {
        "type": PROBLEM_TYPE_BASE + "invalid-input",
        "title": "Invalid input",
        "status": 400,
        "detail": "metric.baseline: Expected `float` <= 1.0",
        "invalid_params": [{"name": "metric.baseline", "reason": "Expected `float` <= 1.0"}],
    }
    specs: dict[int, ResponseSpec] = {}
    for status in (*statuses, 500):
        slug, title = _TITLES[status]
        specs[status] = ResponseSpec(
            data_container=Problem,
            generate_examples=False,
            media_type=PROBLEM_MEDIA_TYPE,
            description=_DESCRIPTIONS[status],
            examples=[
                Example(
                    summary=title,
                    value={**example, "type": PROBLEM_TYPE_BASE + slug, "title": title, "status": status}
                    if status == 400
                    else {"type": PROBLEM_TYPE_BASE + slug, "title": title, "status": status, "detail": title},
                )
            ],
        )
    return specs
