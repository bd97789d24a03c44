"""A ``counterfact worker`` process: takes jobs and parts from the queue and runs their tasks.

Each start of a job is an attempt; ``attempts`` is counted on the job's row. A worker whose process
dies stops heartbeating and pgqueuer hands its job to another worker, which starts the next attempt;
past ``max_attempts`` the job fails with a 503 problem saying so. Only the attempt that runs a job can
finish it (``finish_job`` checks status and attempt in one ``UPDATE``), so a job is never finished
twice. While a task runs, its progress is written every ``HEARTBEAT_SECONDS`` and the job's status read
back: a cancelled job's computation is stopped at its next progress report. Exceptions become the
problem document a request would have answered (:func:`api.http.errors.problem_for_exception`).

A worker asked to stop (SIGTERM or SIGINT, or ``stop``) takes no new work and hands back what it is
running: each computation is stopped (a thread at its next progress report) and its job, part or reduce
is queued again in one transaction, for any worker to take from the start. A start handed back is not
an attempt: ``attempts`` counts the starts that ended or whose worker died (SIGKILL, a lost machine).

A worker outlives its database (:func:`run_worker`): its own heartbeat (a ``job_workers`` row, which
``GET /health`` reads) doubles as the watch on the connection. When the database goes away, the worker
stops its computations, writes nothing, and connects again with backoff until the database is back; a
job it was running is taken again once its queue heartbeat is stale, as if its worker had died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from pgqueuer import Job as QueueJob
from pgqueuer import Queries, QueueManager

from api.db.database import apply_migrations, create_pool, load_migrations, resolve_database_url
from api.http.errors import ServiceUnavailable, problem_for_exception
from api.jobs.progress import JobCancelled, ProgressReporter
from api.jobs.queue import (
    JOB_ENTRYPOINT,
    PART_ENTRYPOINT,
    hand_back_job,
    hand_back_part,
    hand_back_reduce,
    install_queue_schema,
    parse_part_payload,
    result_json,
)
from api.jobs.repository import JobRepository, WorkerRepository
from api.jobs.tasks import FannedOut, TaskContext, TaskRegistry
from api.settings import Settings

HEARTBEAT_SECONDS = 1.0
# The worker's own heartbeat (its ``job_workers`` row, read by GET /health) and the loss of its database.
WORKER_HEARTBEAT_SECONDS = 2.0
WORKER_HEARTBEAT_TIMEOUT_SECONDS = 5.0
RECONNECT_FIRST_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 15.0
logger = logging.getLogger("counterfact.worker")


def interrupted(attempts: int) -> ServiceUnavailable:
    """The 503 of a job whose workers died ``attempts`` times (``COUNTERFACT_JOB_MAX_ATTEMPTS``)."""
    return ServiceUnavailable(
        f"The workers running this job stopped {attempts} times before it finished; request it again."
    )


class HandedBack(Exception):
    """The worker is stopping: the task's work goes back to the queue for another worker."""


class Abandoned(Exception):
    """The worker lost its database: the task was stopped and nothing of it can be written."""


class Worker:
    """Runs the registered tasks of the jobs and parts a queue manager hands it."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        queue_pool: asyncpg.Pool,
        registry: TaskRegistry,
        *,
        max_attempts: int,
        slots: int,
        silence: timedelta = timedelta(seconds=30),
    ) -> None:
        self.pool = pool
        self.queue_pool = queue_pool
        self.registry = registry
        self.max_attempts = max_attempts
        self.silence = silence
        self._slots = asyncio.Semaphore(max(slots, 1))
        self._running: dict[asyncio.Future[Any], ProgressReporter] = {}
        self._handing_back = False
        self._abandoning = False

    def hand_back(self) -> None:
        """Stop every computation and take no new one: their work goes back to the queue."""
        self._handing_back = True
        self._stop_all()

    def abandon(self) -> None:
        """Stop every computation and take no new one, writing nothing: the database is gone."""
        self._abandoning = True
        self._stop_all()

    def _stop_all(self) -> None:
        for task, progress in self._running.items():
            progress.cancel()
            task.cancel()

    def _stopped(self) -> BaseException:
        return Abandoned() if self._abandoning else HandedBack()

    def _context(self, job_id: UUID, payload: bytes) -> TaskContext:
        return TaskContext(pool=self.pool, queue_pool=self.queue_pool, job_id=job_id, payload=payload)

    async def _supervise(
        self, job_id: UUID, attempt: int, work: Callable[[], Awaitable[Any]], progress: ProgressReporter
    ) -> tuple[Any, BaseException | None]:
        """Start ``work`` when a slot is free and run it with a heartbeat; ``(value, None)``, ``(None, error)``,
        ``(None, JobCancelled)``, or ``(None, HandedBack)`` when the worker is stopping."""
        async with self._slots:
            if self._handing_back or self._abandoning:
                return None, self._stopped()
            task = asyncio.ensure_future(work())
            self._running[task] = progress
            try:
                return await self._heartbeat(job_id, attempt, task, progress)
            finally:
                del self._running[task]

    async def _heartbeat(
        self, job_id: UUID, attempt: int, task: asyncio.Future[Any], progress: ProgressReporter
    ) -> tuple[Any, BaseException | None]:
        """Write ``progress`` while ``task`` runs, and stop it when its job is no longer running."""
        while not task.done():
            await asyncio.wait({task}, timeout=HEARTBEAT_SECONDS)
            if task.done():
                break
            try:
                async with self.pool.acquire() as connection:
                    status = await JobRepository(connection).record_progress(job_id, attempt, progress.fraction)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                logger.warning("could not record progress of job %s", job_id, exc_info=True)
                continue
            if status not in ("running", "queued"):
                progress.cancel()
                task.cancel()
        try:
            return task.result(), None
        except (JobCancelled, asyncio.CancelledError):
            return None, self._stopped() if self._handing_back or self._abandoning else JobCancelled()
        except Exception as error:  # every failure becomes the job's problem document
            return None, error

    async def _finish(self, job_id: UUID, attempt: int, value: Any, error: BaseException | None) -> None:
        async with self.pool.acquire() as connection:
            repository = JobRepository(connection)
            if error is None:
                await repository.finish(job_id, attempt, "succeeded", result_json(value), None)
            else:
                problem, _ = problem_for_exception(error, f"job {job_id}")
                await repository.finish(job_id, attempt, "failed", None, problem)

    async def run_job(self, job_id: UUID) -> None:
        async with self.pool.acquire() as connection:
            row = await JobRepository(connection).start_attempt(job_id)
        if row is None:  # cancelled, finished or forgotten meanwhile
            return
        attempt = int(row["attempts"])
        if attempt > self.max_attempts:
            await self._finish(job_id, attempt, None, interrupted(attempt - 1))
            return
        if row["parts_total"] is not None:  # an earlier attempt fanned it out: its parts carry on
            await self._reduce_when_complete(job_id)
            return
        task = self.registry.jobs.get(row["kind"])
        if task is None:
            await self._finish(job_id, attempt, None, RuntimeError(f"no task registered for {row['kind']!r}"))
            return
        context = self._context(job_id, bytes(row["payload"] or b""))
        value, error = await self._supervise(job_id, attempt, lambda: task(context), context.progress)
        if isinstance(error, HandedBack):
            await hand_back_job(self.queue_pool, job_id, attempt)
            return
        if isinstance(error, JobCancelled | Abandoned):
            return
        if isinstance(value, FannedOut):
            await self._reduce_when_complete(job_id)  # a fan-out into no parts is complete at once
            return
        await self._finish(job_id, attempt, value, error)

    async def run_part(self, job_id: UUID, index: int) -> None:
        async with self.pool.acquire() as connection:
            row = await JobRepository(connection).start_part(job_id, index)
        if row is None:  # done already (a retried queue job), or the parent ended
            await self._reduce_when_complete(job_id)
            return
        if int(row["attempts"]) > self.max_attempts:
            await self._finish(job_id, 0, None, interrupted(int(row["attempts"]) - 1))
            return
        task = self.registry.parts.get(row["task"])
        if task is None:
            await self._finish(job_id, 0, None, RuntimeError(f"no part task registered for {row['task']!r}"))
            return
        context = self._context(job_id, bytes(row["payload"]))
        # The part's heartbeat reports no progress of its own (0): the parent's progress counts whole parts.
        value, error = await self._supervise(job_id, 0, lambda: task(context), ProgressReporter())
        if isinstance(error, HandedBack):
            await hand_back_part(self.queue_pool, job_id, index)
            return
        if isinstance(error, JobCancelled | Abandoned):
            return
        if error is not None:
            await self._finish(job_id, 0, None, error)
            return
        async with self.pool.acquire() as connection, connection.transaction():
            repository = JobRepository(connection)
            counts = (
                await repository.count_part_done(job_id) if await repository.finish_part(job_id, index, value) else None
            )
        if counts is None or counts["parts_done"] >= counts["parts_total"]:
            await self._reduce_when_complete(job_id)

    async def _reduce_when_complete(self, job_id: UUID) -> None:
        """Run the job's reduce task once every part is done: the caller that claims it (one at a time)."""
        async with self.pool.acquire() as connection:
            repository = JobRepository(connection)
            parent = await repository.claim_reduce(job_id, self.silence)
            if parent is None:
                return
            results = await repository.part_results(job_id)
        task = self.registry.reducers.get(parent["reduce_task"])
        if task is None:
            await self._finish(
                job_id, 0, None, RuntimeError(f"no reduce task registered for {parent['reduce_task']!r}")
            )
            return
        context = self._context(job_id, bytes(parent["payload"] or b""))
        value, error = await self._supervise(job_id, 0, lambda: task(context, results), context.progress)
        if isinstance(error, HandedBack):
            await hand_back_reduce(self.queue_pool, job_id)
            return
        if isinstance(error, JobCancelled | Abandoned):
            return
        await self._finish(job_id, 0, value, error)


async def run_worker(settings: Settings, registry: TaskRegistry, stop: asyncio.Event | None = None) -> None:
    """Take jobs from the queue until ``stop`` is set (or SIGTERM/SIGINT when run as a command).

    A worker outlives its database: when the database cannot be reached (at start, or lost later: a
    restart, a failover, a network cut) it stops what it computes, closes its connections and connects
    again after a backoff (``RECONNECT_FIRST_SECONDS``, doubling to ``RECONNECT_MAX_SECONDS``) for as long
    as it takes. It never exits for that; only ``stop`` ends it.
    """
    stopping = stop or _stop_on_signals()
    worker_id = uuid4()
    delay = RECONNECT_FIRST_SECONDS
    while not stopping.is_set():
        connected = asyncio.Event()
        try:
            await _serve_queue(settings, registry, stopping, worker_id, connected)
        except Exception as error:  # the database went away or is not there yet: connect again
            reason = f"{type(error).__name__}: {error}"
        else:
            if stopping.is_set():
                return
            reason = "its queue stopped by itself"
        if connected.is_set():
            delay = RECONNECT_FIRST_SECONDS
        logger.warning("worker cannot reach its database (%s); connecting again in %.1f s", reason, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=delay)
        delay = min(2 * delay, RECONNECT_MAX_SECONDS)


def _stop_on_signals() -> asyncio.Event:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    return stopping


async def _close_pool(pool: asyncpg.Pool) -> None:
    """Close gracefully, or at once when connections stay held (a lost database)."""
    try:
        await asyncio.wait_for(pool.close(), timeout=10)
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        pool.terminate()


async def _forget_worker(pool: asyncpg.Pool, worker_id: UUID) -> None:
    """Delete the worker's row on the way out (a lost database keeps it until its heartbeat is stale)."""
    with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
        async with asyncio.timeout(WORKER_HEARTBEAT_TIMEOUT_SECONDS), pool.acquire() as connection:
            await WorkerRepository(connection).forget(worker_id)


async def _beat(pool: asyncpg.Pool, worker_id: UUID, lost: asyncio.Event) -> None:
    """Write the worker's heartbeat every ``WORKER_HEARTBEAT_SECONDS``; set ``lost`` after two failures in a
    row (one broken connection is replaced by the pool; a database that went away fails twice)."""
    failures = 0
    while failures < 2:
        await asyncio.sleep(WORKER_HEARTBEAT_SECONDS)
        try:
            async with asyncio.timeout(WORKER_HEARTBEAT_TIMEOUT_SECONDS), pool.acquire() as connection:
                await WorkerRepository(connection).heartbeat(worker_id, socket.gethostname(), os.getpid())
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            failures += 1
        else:
            failures = 0
    logger.warning("worker lost its database: its heartbeat failed twice in a row")
    lost.set()


async def _serve_queue(
    settings: Settings,
    registry: TaskRegistry,
    stopping: asyncio.Event,
    worker_id: UUID,
    connected: asyncio.Event,
) -> None:
    """One connected session of the worker: returns when ``stopping`` is set; raises when the database is
    lost (then every computation has been stopped, nothing written: a job running here is taken again by
    a worker once its queue heartbeat is stale, as when a worker dies)."""
    database_url = resolve_database_url(settings)
    async with contextlib.AsyncExitStack() as cleanup:
        queue_pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
        assert queue_pool is not None
        cleanup.push_async_callback(_close_pool, queue_pool)
        pool = await create_pool(database_url, settings)
        cleanup.push_async_callback(_close_pool, pool)
        async with queue_pool.acquire() as connection:
            await apply_migrations(connection, load_migrations())
            await install_queue_schema(connection)
            workers = WorkerRepository(connection)
            await workers.forget_dead()
            await workers.heartbeat(worker_id, socket.gethostname(), os.getpid())
        cleanup.push_async_callback(_forget_worker, pool, worker_id)
        worker = Worker(
            pool,
            queue_pool,
            registry,
            max_attempts=settings.job_max_attempts,
            slots=settings.worker_concurrency,
            silence=timedelta(seconds=settings.job_heartbeat_timeout_seconds),
        )
        manager = QueueManager(Queries.from_asyncpg_pool(queue_pool))

        @manager.entrypoint(JOB_ENTRYPOINT)
        async def run_job(job: QueueJob) -> None:
            await worker.run_job(UUID(bytes=bytes(job.payload or b"")))

        @manager.entrypoint(PART_ENTRYPOINT)
        async def run_part(job: QueueJob) -> None:
            await worker.run_part(*parse_part_payload(bytes(job.payload or b"")))

        lost = asyncio.Event()

        async def shut_down_when_asked_or_lost() -> None:
            asked, gone = asyncio.ensure_future(stopping.wait()), asyncio.ensure_future(lost.wait())
            try:
                await asyncio.wait({asked, gone}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                asked.cancel()
                gone.cancel()
            if stopping.is_set():
                worker.hand_back()
            else:
                worker.abandon()
            manager.shutdown.set()

        connected.set()
        background = [
            asyncio.create_task(_beat(pool, worker_id, lost)),
            asyncio.create_task(shut_down_when_asked_or_lost()),
        ]
        try:
            await manager.run(
                dequeue_timeout=timedelta(seconds=2),
                batch_size=1,
                max_concurrent_tasks=2 * max(settings.worker_concurrency, 1),
                heartbeat_timeout=timedelta(seconds=settings.job_heartbeat_timeout_seconds),
            )
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
        if lost.is_set():
            raise ConnectionError("the worker's heartbeat could not reach the database")
