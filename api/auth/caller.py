"""The API key of the request being served, and the workspace it works in.

The guard sets both once the key is accepted. Context variables rather than parameters threaded through
every service: each request runs in its own task (and worker threads copy the context), so they are the
caller and workspace of *this* request, and services and repositories use them without every signature
carrying them.

A request works in one workspace (its key's, or the one an all-workspaces key names with the
``Counterfact-Workspace`` header) or, for an all-workspaces key naming none, reads in every workspace. Code
outside a request (the CLI, a worker, a test calling a service) reads in every workspace and writes into
``default``.
"""

from __future__ import annotations

from contextvars import ContextVar
from uuid import UUID

from api.auth.keys import ApiKey

DEFAULT_WORKSPACE = "default"  # sql/0023_workspaces.sql
WORKSPACE_HEADER = "Counterfact-Workspace"

_current_key: ContextVar[ApiKey | None] = ContextVar("counterfact_api_key", default=None)
_current_workspace: ContextVar[str | None] = ContextVar("counterfact_workspace", default=None)


def set_current_key(key: ApiKey | None, workspace: str | None = None) -> None:
    """Make ``key`` the caller of the code that runs from here in this context, working in ``workspace``
    (``None``: reading in every workspace)."""
    _current_key.set(key)
    _current_workspace.set(workspace)


def current_key() -> ApiKey | None:
    """The key of the request being served; ``None`` outside a request (a CLI, a test calling a service)."""
    return _current_key.get()


def current_key_id() -> UUID | None:
    """The id of :func:`current_key`, recorded as the creator or changer of what the request writes."""
    key = _current_key.get()
    return None if key is None else key.id


def workspace_filter() -> str | None:
    """The workspace whose rows this request may see, or ``None`` for every workspace. Queries by id and
    listings pass it as ``($n::text IS NULL OR workspace = $n)``: another workspace's id is not found."""
    return _current_workspace.get()


def acting_workspace() -> str:
    """The workspace what this request creates belongs to (``default`` outside a request)."""
    workspace = _current_workspace.get()
    return DEFAULT_WORKSPACE if workspace is None else workspace


def adopt_workspace(workspace: str) -> None:
    """A request reading in every workspace works, once it has read an experiment, dataset or job by id, in
    that row's workspace: what it creates from it (a job computing its results) goes there too."""
    if _current_key.get() is not None and _current_workspace.get() is None:
        _current_workspace.set(workspace)
