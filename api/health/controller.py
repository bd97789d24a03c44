"""``GET /health``: is the service up and can it reach its database?"""

from __future__ import annotations

import asyncio

import asyncpg
import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency

from api.database import ping
from api.errors import ServiceUnavailable, problem_responses
from api.openapi_examples import ExampleOperation

DATABASE_CHECK_TIMEOUT_S = 2.0


class Health(msgspec.Struct, frozen=True):
    """Service health."""

    status: str = msgspec.field(default="ok")
    database: str = msgspec.field(default="ok")


class HealthController(Controller):
    path = "/health"
    tags = ["health"]

    @get(
        operation_id="GetHealth",
        operation_class=ExampleOperation,
        summary="Service and database health",
        description="200 when the service answers and a `SELECT 1` on its database succeeds within 2 s; "
        "503 problem+json otherwise. Recovers by itself when the database is back.",
        responses=problem_responses(503),
    )
    async def health(self, pool: NamedDependency[asyncpg.Pool]) -> Health:
        try:
            async with asyncio.timeout(DATABASE_CHECK_TIMEOUT_S):
                await ping(pool)
        except Exception as exc:  # any failure to answer SELECT 1 means the database is not usable now
            raise ServiceUnavailable(f"The database cannot be reached: {type(exc).__name__}") from exc
        return Health()
