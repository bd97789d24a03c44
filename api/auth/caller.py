"""The API key of the request being served, for code that records who did something (the audit trail).

The guard sets it once the key is accepted. A context variable rather than a parameter threaded through
every service: each request runs in its own task (and worker threads copy the context), so it is the
caller of *this* request, and services record it without every signature carrying it.
"""

from __future__ import annotations

from contextvars import ContextVar
from uuid import UUID

from api.auth.keys import ApiKey

_current_key: ContextVar[ApiKey | None] = ContextVar("counterfact_api_key", default=None)


def set_current_key(key: ApiKey | None) -> None:
    """Make ``key`` the caller of the code that runs from here in this context."""
    _current_key.set(key)


def current_key() -> ApiKey | None:
    """The key of the request being served; ``None`` outside a request (a CLI, a test calling a service)."""
    return _current_key.get()


def current_key_id() -> UUID | None:
    """The id of :func:`current_key`, recorded as the creator or changer of what the request writes."""
    key = _current_key.get()
    return None if key is None else key.id
