"""``GET /health``: is the service up, can it reach its database, and are its jobs being worked on?"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import asyncpg
import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency

from api.http.errors import ServiceUnavailable, problem_responses
from api.jobs.repository import WorkerRepository
from api.openapi.examples import ExampleOperation
from api.settings import Settings

DATABASE_CHECK_TIMEOUT_S = 2.0


class WorkerHealth(msgspec.Struct, frozen=True):
    """The ``counterfact worker`` processes heard from recently."""

    live: int = 0
    last_heartbeat: datetime | None = None


class QueueHealth(msgspec.Struct, frozen=True):
    """Jobs waiting for a worker."""

    queued: int = 0
    oldest_queued_seconds: float | None = None


class Health(msgspec.Struct, frozen=True):
    """Service health: the database answers; how many workers are alive; how long the queue has waited."""

    status: str = msgspec.field(default="ok")
    database: str = msgspec.field(default="ok")
    workers: WorkerHealth = msgspec.field(default_factory=WorkerHealth)
    queue: QueueHealth = msgspec.field(default_factory=QueueHealth)


def stalled(health: Health, queue_age_limit: float) -> str | None:
    """Why jobs are not being worked on (a job queued longer than ``queue_age_limit`` seconds and no live
    worker), or ``None``. Workers that are alive but busy are a backlog, not a fault."""
    oldest = health.queue.oldest_queued_seconds
    if health.workers.live > 0 or oldest is None or oldest <= queue_age_limit:
        return None
    heard = health.workers.last_heartbeat
    last = f"the last heartbeat was at {heard.isoformat()}" if heard is not None else "none has ever run"
    return (
        f"No worker is alive ({last}) and a job has waited {oldest:.0f} s in the queue; "
        "start one with `counterfact worker`"
    )


class HealthController(Controller):
    path = "/health"
    tags = ["health"]

    @get(
        operation_id="GetHealth",
        operation_class=ExampleOperation,
        summary="Service, database and worker health",
        description="200 when the service answers and its database answers within 2 s, with the workers "
        "alive (`workers.live`: heard from within `COUNTERFACT_JOB_HEARTBEAT_TIMEOUT_SECONDS`; "
        "`last_heartbeat` of any worker) and the queue (`queued` jobs, `oldest_queued_seconds`). "
        "503 problem+json when the database cannot be reached, or when a job has been queued for more than "
        "`COUNTERFACT_HEALTH_QUEUE_SECONDS` and no worker is alive. Recovers by itself when they are back.",
        responses=problem_responses(503),
    )
    async def health(self, pool: NamedDependency[asyncpg.Pool], settings: NamedDependency[Settings]) -> Health:
        silence = timedelta(seconds=settings.job_heartbeat_timeout_seconds)
        try:
            async with asyncio.timeout(DATABASE_CHECK_TIMEOUT_S):
                async with pool.acquire() as connection:
                    row = await WorkerRepository(connection).health(silence)
        except Exception as exc:  # any failure to answer means the database is not usable now
            raise ServiceUnavailable(f"The database cannot be reached: {type(exc).__name__}") from exc
        oldest = row["oldest_queued_seconds"]
        health = Health(
            workers=WorkerHealth(live=int(row["live"]), last_heartbeat=row["last_heartbeat"]),
            queue=QueueHealth(
                queued=int(row["queued"]), oldest_queued_seconds=None if oldest is None else round(float(oldest), 3)
            ),
        )
        reason = stalled(health, settings.health_queue_seconds)
        if reason is not None:
            raise ServiceUnavailable(reason)
        return health
