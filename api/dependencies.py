"""Objects handlers receive by dependency injection."""

from __future__ import annotations

import asyncpg
from litestar.datastructures import State

from api.jobs.runner import JobRunner


def provide_pool(state: State) -> asyncpg.Pool:
    """The app's connection pool, opened in the lifespan."""
    pool: asyncpg.Pool = state.pool
    return pool


def provide_jobs(state: State) -> JobRunner:
    """The app's job runner, created in the lifespan."""
    jobs: JobRunner = state.jobs
    return jobs
