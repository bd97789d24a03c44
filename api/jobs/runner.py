"""Answer within the request when the work is quick; otherwise hand back a job and finish it in the background.

A computation starts at once. If it ends within the wait budget (``COUNTERFACT_JOB_AFTER_SECONDS``,
2 s by default, or the client's ``Prefer: wait=N``; ``Prefer: respond-async`` alone means 0) its answer
(or its 4xx) is the response. Otherwise a row is written to ``jobs`` and the request answers ``202``
with it; a supervisor task keeps running the computation, writes its progress and heartbeat every
``HEARTBEAT_SECONDS``, and finally its result or its problem document. The numerical work itself runs in
worker threads, never on the event loop. A job whose heartbeat stops (its process ended) reads as
failed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar

import asyncpg
import msgspec

from api.errors import PROBLEM_TYPE_BASE, DomainError, InvalidParam, Problem
from api.geo.schemas import GeoResults
from api.jobs.schemas import Job
from api.results.schemas import HoldoutResults
from api.sql_queries import load_queries
from stats.errors import InvalidProblem

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))
HEARTBEAT_SECONDS = 1.0
SILENCE_BEFORE_FAILED = timedelta(seconds=60)
MAX_WAIT_SECONDS = 3600.0
JOB_RETENTION = timedelta(days=30)
logger = logging.getLogger("counterfact.jobs")

T = TypeVar("T")
JobResult = HoldoutResults | GeoResults


class JobCancelled(Exception):
    """Raised inside the worker thread at its next progress report once its job is cancelled."""


class ProgressReporter:
    """Receives fractions done from the worker thread; the supervisor reads the latest.

    Cancelling it makes the next report raise :class:`JobCancelled`, which ends the numerical work in
    its thread (a thread cannot be cancelled from outside).
    """

    def __init__(self) -> None:
        self.fraction = 0.0
        self.cancelled = False

    def __call__(self, fraction: float) -> None:
        if self.cancelled:
            raise JobCancelled
        self.fraction = min(1.0, max(self.fraction, float(fraction)))

    def cancel(self) -> None:
        self.cancelled = True


def preferred_wait(prefer: str | None) -> float | None:
    """Seconds the client will wait for a synchronous answer (RFC 7240 ``Prefer``), or ``None``."""
    if not prefer:
        return None
    wait = re.search(r"(?:^|[,;\s])wait\s*=\s*\"?(\d+(?:\.\d+)?)", prefer, flags=re.IGNORECASE)
    if wait is not None:
        return min(float(wait.group(1)), MAX_WAIT_SECONDS)
    if re.search(r"(?:^|[,;\s])respond-async(?:$|[,;\s])", prefer, flags=re.IGNORECASE):
        return 0.0
    return None


def problem_of(error: BaseException) -> Problem:
    """The problem document the request would have answered with."""
    if isinstance(error, DomainError):
        status, slug, title, detail, params = (
            error.status_code,
            error.slug,
            error.title,
            error.detail,
            error.invalid_params,
        )
    elif isinstance(error, InvalidProblem):
        status, slug, title = 400, "invalid-input", "Invalid input"
        detail, params = f"{error.field}: {error.reason}", [(error.field, error.reason)]
    else:
        instance = f"urn:uuid:{uuid.uuid4()}"
        logger.error("job failed", exc_info=error, extra={"instance": instance})
        return Problem(
            type=PROBLEM_TYPE_BASE + "internal-error",
            title="Internal server error",
            status=500,
            detail="An unexpected error occurred. Quote the instance id when you report it.",
            instance=instance,
        )
    return Problem(
        type=PROBLEM_TYPE_BASE + slug,
        title=title,
        status=status,
        detail=detail,
        invalid_params=[InvalidParam(name=n, reason=r) for n, r in params] or None,
    )


INTERRUPTED = Problem(
    type=PROBLEM_TYPE_BASE + "job-interrupted",
    title="Job interrupted",
    status=500,
    detail="The server computing this job stopped before it finished; request the result again.",
)


def job_from_row(row: Any) -> Job:
    status = row["status"]
    error = None if row["error"] is None else msgspec.convert(row["error"], Problem)
    return Job(
        id=str(row["id"]),
        kind=row["kind"],
        subject=row["subject"],
        status=status,
        progress=float(row["progress"]),
        created_at=row["created_at"],
        updated_at=row["heartbeat_at"],
        finished_at=row["finished_at"],
        result=None if row["result"] is None else msgspec.convert(row["result"], JobResult),  # type: ignore[arg-type]
        error=error,
    )


class Answer(Generic[T]):
    """Either the computation's value (``value``) or the job now computing it (``job``)."""

    def __init__(self, value: T | None = None, job: Job | None = None) -> None:
        self.value = value
        self.job = job


class JobRunner:
    """Runs computations for requests and turns the slow ones into jobs; one per application."""

    def __init__(self, pool: asyncpg.Pool, wait_seconds: float) -> None:
        self.pool = pool
        self.wait_seconds = wait_seconds
        self._supervisors: dict[asyncio.Task[None], uuid.UUID] = {}

    async def answer(
        self,
        kind: str,
        subject: str,
        compute: Callable[[ProgressReporter], Awaitable[T]],
        *,
        wait_seconds: float | None = None,
    ) -> Answer[T]:
        """Start ``compute``; its value if it ends within the wait budget, else a stored running job."""
        progress = ProgressReporter()
        task = asyncio.ensure_future(compute(progress))
        budget = self.wait_seconds if wait_seconds is None else wait_seconds
        try:
            if budget > 0:
                await asyncio.wait({task}, timeout=budget)
            if task.done():
                return Answer(value=task.result())
            job_id = uuid.uuid4()
            async with self.pool.acquire() as connection:
                row = await connection.fetchrow(QUERIES["insert_job"], job_id, kind, subject, progress.fraction)
        except BaseException:
            progress.cancel()
            task.cancel()
            raise
        supervisor = asyncio.create_task(self._supervise(job_id, task, progress))
        self._supervisors[supervisor] = job_id
        supervisor.add_done_callback(lambda done: self._supervisors.pop(done, None))
        return Answer(job=job_from_row(row))

    async def forget_old_jobs(self) -> None:
        """Delete jobs that finished more than ``JOB_RETENTION`` ago (run at start-up)."""
        async with self.pool.acquire() as connection:
            await connection.execute(QUERIES["forget_old_jobs"], JOB_RETENTION)

    async def get(self, job_id: uuid.UUID) -> Job | None:
        """The job, failing it first if its worker has stopped reporting for ``SILENCE_BEFORE_FAILED``."""
        async with self.pool.acquire() as connection:
            row = await connection.fetchrow(QUERIES["select_job"], job_id)
            if row is not None and row["status"] == "running" and row["silent_for"] > SILENCE_BEFORE_FAILED:
                await connection.execute(QUERIES["fail_stale_job"], job_id, SILENCE_BEFORE_FAILED, INTERRUPTED)
                row = await connection.fetchrow(QUERIES["select_job"], job_id)
        return None if row is None else job_from_row(row)

    async def _supervise(self, job_id: uuid.UUID, task: asyncio.Future[Any], progress: ProgressReporter) -> None:
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=HEARTBEAT_SECONDS)
                if not task.done():
                    await self._record(QUERIES["record_progress"], job_id, progress.fraction)
            error = task.exception()
            if error is None:
                await self._record(QUERIES["finish_job"], job_id, "succeeded", task.result(), None, attempts=5)
            else:
                await self._record(QUERIES["finish_job"], job_id, "failed", None, problem_of(error), attempts=5)
        except asyncio.CancelledError:
            progress.cancel()
            task.cancel()
            raise

    async def _record(self, query: str, *args: Any, attempts: int = 1) -> None:
        """Write a heartbeat or the end of a job; a failed write is logged (and retried for the end),
        never allowed to end the supervision: a job whose writes stay impossible reads as failed later."""
        for attempt in range(attempts):
            try:
                async with self.pool.acquire() as connection:
                    await connection.execute(query, *args)
                return
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                logger.warning("could not record job state (attempt %d of %d)", attempt + 1, attempts, exc_info=True)
                if attempt + 1 < attempts:
                    await asyncio.sleep(HEARTBEAT_SECONDS * (attempt + 1))

    async def close(self) -> None:
        """At shutdown: stop the unfinished jobs and record them as failed, saying why."""
        unfinished = dict(self._supervisors)
        for supervisor in unfinished:
            supervisor.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        if not unfinished:
            return
        problem = Problem(
            type=PROBLEM_TYPE_BASE + "job-interrupted",
            title="Job interrupted",
            status=503,
            detail="The server shut down before this job finished; request the result again.",
        )
        async with self.pool.acquire() as connection:
            for job_id in unfinished.values():
                await connection.execute(QUERIES["finish_job"], job_id, "failed", None, problem)
