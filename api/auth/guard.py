"""The guard every ``/v1`` operation passes: a valid bearer key with the scope the operation needs.

Applied once, on the router that holds the ``/v1`` controllers (see ``api/app.py``). The scope an
operation needs follows from its method — ``GET`` reads, ``POST``/``PUT``/``PATCH`` write, ``DELETE``
is ``admin`` — unless its handler declares ``opt={"scope": "read"}`` (a ``POST`` that only computes).

The guard also settles the request's workspace (:mod:`api.auth.caller`): a key's own, or for an
all-workspaces admin key the one named by the ``Counterfact-Workspace`` header — which an operation
needing more than ``read`` requires (400 without it), since what it writes must land in one workspace.
A key of one workspace may send the header only with its own workspace's name (400 otherwise, whether
or not the name exists, so names cannot be probed with it).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any, NoReturn

import asyncpg
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException, TooManyRequestsException
from litestar.handlers.base import BaseRouteHandler

from api.auth import service
from api.auth.caller import WORKSPACE_HEADER, set_current_key
from api.auth.keys import ApiKey, Scope, hash_key
from api.auth.rate_limit import FailureLimiter, RateLimiter
from api.http.errors import invalid_field
from api.workspaces.repository import WorkspaceRepository

logger = logging.getLogger("counterfact.auth")

REALM = 'Bearer realm="counterfact"'
_METHOD_SCOPES = {"GET": Scope.READ, "HEAD": Scope.READ, "OPTIONS": Scope.READ, "DELETE": Scope.ADMIN}
_CACHE_MAX_ENTRIES = 10_000


def required_scope(handler: BaseRouteHandler, method: str) -> Scope:
    """The scope ``handler`` needs when called with ``method``."""
    declared = handler.opt.get("scope")
    if declared is not None:
        return Scope(declared)
    return _METHOD_SCOPES.get(method.upper(), Scope.WRITE)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or ``None``."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


class ApiKeyGuard:
    """Checks the bearer key of each request; valid keys are remembered for ``cache_seconds``, unknown ones
    for ``negative_cache_seconds`` (a client repeating a wrong key costs one lookup, not one a request).

    The caches are keyed by the key's hash, never the key. A revoked key therefore works for at most
    ``cache_seconds`` more on a replica that had just seen it; an expiry is checked on every request.
    With ``failures`` (a :class:`FailureLimiter`), a client address that keeps failing is refused with 429
    before any lookup, and logged once when it starts to be.
    """

    def __init__(
        self,
        cache_seconds: float,
        limiter: RateLimiter | None = None,
        failures: FailureLimiter | None = None,
        negative_cache_seconds: float = 0.0,
    ) -> None:
        self.cache_seconds = cache_seconds
        self.limiter = limiter
        self.failures = failures
        self.negative_cache_seconds = negative_cache_seconds
        self._cache: dict[bytes, tuple[float, ApiKey]] = {}
        self._unknown: dict[bytes, float] = {}

    async def __call__(self, connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        if isinstance(connection.scope.get("auth"), ApiKey):
            return  # already checked for this request (by the idempotency middleware)
        method = str(connection.scope.get("method", "GET"))
        token = bearer_token(connection.headers.get("authorization"))
        key = None if token is None else self._cached(hash_key(token))
        if key is None:
            self._refuse_a_failing_address(connection)
        if token is None:
            self._refuse(connection, "missing", "Send an `Authorization: Bearer <key>` header with an API key.")
        if key is None:
            key = await self._lookup(connection, token)
        if key is None:
            self._refuse(connection, "unknown", "The API key is not valid.")
        refusal = key.refusal(datetime.now(UTC))
        if refusal is not None:
            self._refuse(connection, refusal, f"The API key was {refusal}.", key)
        needed = required_scope(handler, method)
        if not key.scope.grants(needed):
            logger.warning(
                "api key lacks scope",
                extra={**_where(connection), "key_id": str(key.id), "scope": key.scope.value, "needed": needed.value},
            )
            raise PermissionDeniedException(
                detail=f"This operation needs the `{needed.value}` scope; the key has `{key.scope.value}`.",
                headers={"WWW-Authenticate": f'{REALM}, error="insufficient_scope", scope="{needed.value}"'},
            )
        if self.limiter is not None and (wait := self.limiter.retry_after(key.id, key.scope)) is not None:
            logger.warning("api key rate limited", extra={**_where(connection), "key_id": str(key.id)})
            raise TooManyRequestsException(
                detail=f"This key may make {self.limiter.per_minute[key.scope]} requests a minute; retry in {wait} s.",
                headers={"Retry-After": str(wait)},
            )
        workspace = await self._workspace(connection, key, needed)
        connection.scope["auth"] = key
        set_current_key(key, workspace)

    async def _workspace(
        self, connection: ASGIConnection[Any, Any, Any, Any], key: ApiKey, needed: Scope
    ) -> str | None:
        """The workspace the request works in; ``None`` when an all-workspaces key reads in every one."""
        named = connection.headers.get(WORKSPACE_HEADER)
        if key.workspace is not None:
            if named is not None and named != key.workspace:
                raise invalid_field(WORKSPACE_HEADER, f"this key works in the workspace {key.workspace!r} only")
            return key.workspace
        if named is None:
            if needed is Scope.READ:
                return None
            raise invalid_field(
                WORKSPACE_HEADER,
                "this key works in every workspace: name the one this request writes into with the header",
            )
        # Looked up every time (admin traffic is light): a name remembered after its row went would be a 500.
        pool: asyncpg.Pool = connection.app.state.pool
        async with pool.acquire() as database:
            found = await WorkspaceRepository(database).find(named)
        if found is None:
            raise invalid_field(WORKSPACE_HEADER, f"no workspace named {named!r}")
        return named

    def _cached(self, digest: bytes) -> ApiKey | None:
        """The key remembered under ``digest``, if it was seen less than ``cache_seconds`` ago."""
        cached = self._cache.get(digest)
        if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        return None

    async def _lookup(self, connection: ASGIConnection[Any, Any, Any, Any], token: str) -> ApiKey | None:
        digest = hash_key(token)
        now = time.monotonic()
        unknown_since = self._unknown.get(digest)
        if unknown_since is not None and now - unknown_since < self.negative_cache_seconds:
            return None
        pool: asyncpg.Pool = connection.app.state.pool
        async with pool.acquire() as database:
            key = await service.find_key(database, token)
        if key is not None and self.cache_seconds > 0:
            if len(self._cache) >= _CACHE_MAX_ENTRIES:
                self._cache.clear()
            self._cache[digest] = (now, key)
        if key is None and self.negative_cache_seconds > 0:
            if len(self._unknown) >= _CACHE_MAX_ENTRIES:
                self._unknown.clear()
            self._unknown[digest] = now
        return key

    def _refuse_a_failing_address(self, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        """429 with ``Retry-After`` when the client's address has used up its failures (nothing logged)."""
        if self.failures is None:
            return
        wait = self.failures.retry_after(_address(connection))
        if wait is not None:
            raise TooManyRequestsException(
                detail=f"Too many failed authentications from this address; retry in {wait} s with a valid key.",
                headers={"Retry-After": str(wait)},
            )

    def _refuse(
        self, connection: ASGIConnection[Any, Any, Any, Any], reason: str, detail: str, key: ApiKey | None = None
    ) -> NoReturn:
        """Log the failed attempt (never the key), count it against the client's address and answer 401."""
        if self.failures is not None and self.failures.record_failure(_address(connection)):
            logger.warning(
                "client address out of authentication failures",
                extra={**_where(connection), "per_minute": self.failures.per_minute},
            )
        extra = {**_where(connection), "reason": reason}
        if key is not None:
            extra["key_id"] = str(key.id)
        logger.warning("api key refused", extra=extra)
        challenge = REALM if reason == "missing" else f'{REALM}, error="invalid_token"'
        raise NotAuthorizedException(detail=detail, headers={"WWW-Authenticate": challenge})


def _address(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    client = connection.client
    return client.host if client else ""


def _where(connection: ASGIConnection[Any, Any, Any, Any]) -> dict[str, str]:
    client = connection.client
    return {
        "method": str(connection.scope.get("method", "")),
        "path": connection.url.path,
        "client": client.host if client else "",
    }
