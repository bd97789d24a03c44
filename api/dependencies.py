"""Objects handlers receive by dependency injection."""

from __future__ import annotations

import asyncpg
from litestar.datastructures import State

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
