"""Objects handlers receive by dependency injection."""

from __future__ import annotations

from typing import Any

import asyncpg
from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency

from api.http.request_bodies import Upload
from api.settings import Settings


def provide_pool(state: State) -> asyncpg.Pool:
    """The app's connection pool, opened in the lifespan."""
    pool: asyncpg.Pool = state.pool
    return pool


def provide_queue_pool(state: State) -> asyncpg.Pool:
    """The small pool, without the service's JSON codecs, on which jobs are queued (pgqueuer encodes its own)."""
    pool: asyncpg.Pool = state.queue_pool
    return pool


def provide_settings(state: State) -> Settings:
    """The settings the app was created with."""
    settings: Settings = state.settings
    return settings


def provide_upload(request: Request[Any, Any, Any], settings: NamedDependency[Settings]) -> Upload:
    """The body of a JSON-or-CSV upload, capped by the settings the app was created with."""
    return Upload(request, settings)
