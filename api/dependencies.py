"""Objects handlers receive by dependency injection."""

from __future__ import annotations

import asyncpg
from litestar.datastructures import State


def provide_pool(state: State) -> asyncpg.Pool:
    """The app's connection pool, opened in the lifespan."""
    pool: asyncpg.Pool = state.pool
    return pool
