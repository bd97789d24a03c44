"""ASGI middleware: ``Idempotency-Key`` on the POSTs that create or load data.

The first request with a key (per caller: keys are scoped to the API key that sent them) runs and,
when it succeeds (2xx), its answer is stored with the SHA-256 of its method, path, query string and
body, the body hashed as it streams through (a CSV of millions of lines is never buffered). A retry
with the same key and the same request gets that answer again, with ``Idempotent-Replayed: true``, and
nothing runs twice; the same key with another path, query or body is 422 (Stripe's contract: a key
names one request, so sending it to another experiment must not replay the first one's answer); while
the first is still running, 409. A first request that fails leaves the key free. Answers are kept at
least 24 hours, in PostgreSQL, and deleted with the experiment or dataset they are about
(:func:`api.idempotency.repository.forget_replies_about`).

``CreateExperiment`` and ``CreateExperimentFromDesign`` keep their own mechanism, with the same rules
(per caller, 422 for another body, ``Idempotent-Replayed: true`` on a replay): the key is stored on the
experiment in the transaction that creates it, so no crash can leave a key without its experiment. A key
names one request across both: one that created an experiment is 422 here, and one held here is 422 there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import msgspec
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

from api.auth.guard import ApiKeyGuard
from api.http.errors import (
    PROBLEM_MEDIA_TYPE,
    Conflict,
    DomainError,
    IdempotencyKeyReused,
    InvalidInput,
    problem_for_exception,
)
from api.idempotency.repository import (
    KEY_REUSED_REASON,
    IdempotencyRepository,
    InProgress,
    StoredResponse,
    caller_in_workspace,
)

HEADER = b"idempotency-key"
IDEMPOTENT_OPERATIONS = frozenset(
    {
        "CreateAssignments",
        "CreateObservations",
        "CreateOutcomes",
        "CreateGeoDataset",
        "AppendGeoDatasetRows",
        "CreateMarketSelection",
        "CreateMatchedPairDesign",
    }
)
# Experiments are created with the key stored in the experiment's own transaction (api.experiments).
TRANSACTIONAL_OPERATIONS = frozenset(
    {"CreateExperiment", "CreateExperimentFromDesign", "CreateExperimentFromPairDesign"}
)
MAX_KEY_LENGTH = 200


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _operation(scope: Scope) -> str | None:
    handler = scope.get("route_handler")
    operation_id = getattr(handler, "operation_id", None)
    return operation_id if isinstance(operation_id, str) else None


async def _send_problem(send: Send, error: DomainError) -> None:
    problem, _ = problem_for_exception(error)
    body = msgspec.json.encode(problem)
    headers = [(b"content-type", PROBLEM_MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _request_digest(scope: Scope) -> hashlib._Hash:
    """A SHA-256 started with the request's method, path and query string; the body is added as it streams."""
    digest = hashlib.sha256()
    digest.update(str(scope.get("method", "")).encode("ascii") + b" ")
    digest.update(str(scope["path"]).encode("utf-8", "surrogateescape") + b"?")
    digest.update(bytes(scope.get("query_string", b"")) + b"\n")
    return digest


async def _request_hash(scope: Scope, receive: Receive) -> bytes:
    digest = _request_digest(scope)
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        digest.update(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return digest.digest()


async def _replay(send: Send, stored: StoredResponse) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in stored.headers]
    headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body, "more_body": False})


def idempotency_middleware(authenticate: ApiKeyGuard) -> Callable[[ASGIApp], ASGIApp]:
    """Middleware for the /v1 routes: ``Idempotency-Key`` handling for :data:`IDEMPOTENT_OPERATIONS`.

    Middleware runs before guards, so ``authenticate`` (the API-key guard) runs here first for those
    requests: a replay is served only to a valid key within its rate limit, and the key's id scopes it.
    """

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            is_post = scope["type"] == ScopeType.HTTP and scope.get("method") == "POST"
            key_header = _header(scope, HEADER) if is_post else None
            if key_header is None or _operation(scope) not in IDEMPOTENT_OPERATIONS:
                await app(scope, receive, send)
                return
            await authenticate(ASGIConnection(scope, receive), scope["route_handler"])
            await _idempotent(app, scope, receive, send, key_header.decode("latin-1"))

        return middleware

    return wrap


async def _idempotent(app: ASGIApp, scope: Scope, receive: Receive, send: Send, key: str) -> None:
    """Run, replay or refuse a request with ``Idempotency-Key: key`` from the authenticated caller."""
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        reason = f"must be 1 to {MAX_KEY_LENGTH} printable characters"
        await _send_problem(send, InvalidInput(f"Idempotency-Key: {reason}", [("Idempotency-Key", reason)]))
        return
    caller = caller_in_workspace(scope["auth"].id)
    store = IdempotencyRepository(scope["app"].state.pool)
    if await store.names_an_experiment(scope["auth"].id, key):
        await _send_problem(send, IdempotencyKeyReused(KEY_REUSED_REASON))
        return
    first = await store.claim(caller, key, str(_operation(scope)), scope["path"])
    if isinstance(first, InProgress):
        reason = "a request with this key is still running; retry later"
        await _send_problem(send, Conflict(f"Idempotency-Key: {reason}", [("Idempotency-Key", reason)]))
        return
    if isinstance(first, StoredResponse):
        if await _request_hash(scope, receive) != first.request_hash:
            await _send_problem(send, IdempotencyKeyReused(KEY_REUSED_REASON))
            return
        await _replay(send, first)
        return
    await _run_first(app, scope, receive, send, store, caller, key)


async def _run_first(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, store: IdempotencyRepository, caller: bytes, key: str
) -> None:
    """Run the first request with ``key``, hashing it and keeping its answer when it succeeds."""
    digest = _request_digest(scope)
    status = 0
    headers: list[tuple[str, str]] = []
    chunks: list[bytes] = []

    async def hashing_receive() -> ReceiveMessage:
        message = await receive()
        if message["type"] == "http.request":
            digest.update(message.get("body", b""))
        return message

    async def capturing_send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            headers.extend(
                (bytes(n).decode("latin-1"), bytes(v).decode("latin-1")) for n, v in message.get("headers", [])
            )
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))
        await send(message)

    stored = False
    try:
        await app(scope, hashing_receive, capturing_send)
        if 200 <= status < 300:
            await store.complete(caller, key, StoredResponse(digest.digest(), status, headers, b"".join(chunks)))
            stored = True
    finally:
        if not stored:
            await store.release(caller, key)
