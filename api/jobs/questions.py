"""One computation per question: identical requests share one computation and, once answered, its answer.

A :class:`Question` is what a computation answers: its kind, its parameters and the revision of the data it
reads, hashed into a key. For a question already answered at this revision the kept answer is read back
(``kept_answers``), with the time it was computed, until the data or settings change (a new revision is a new
question). Otherwise, while the question is being computed in this process, an identical request waits on the
same computation; once it has become a job, identical requests are answered with that job (the jobs table holds
at most one queued or running job per question, across processes). A computation started here that outlasts the
wait budget becomes a job, as :func:`api.jobs.answer.answer_or_submit` does, and the job keeps its answer too.

A question reads an experiment (results: :func:`ask`) or a geo dataset (geo power and designs:
:func:`ask_of_dataset`), whose answers are forgotten with it. Work that is always a job (market selections,
matched-pair designs) keeps its answer as the job that succeeded on the question (:func:`answer_by_job`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import msgspec

from api.auth.caller import acting_workspace, current_key_id
from api.db.database import Connection
from api.db.sql_queries import load_queries
from api.jobs.answer import Answer
from api.jobs.progress import ProgressReporter
from api.jobs.queue import JOB_ENTRYPOINT, get_job, queue_queries
from api.jobs.schemas import Job

QUERIES = load_queries(Path(__file__).with_name("questions.sql"))

T = TypeVar("T")


@dataclass(frozen=True)
class Question:
    """A computation's identity: ``key`` hashes its kind, parameters (the job payload), what it reads (an
    experiment or a geo dataset, whichever is set) and that one's revision."""

    key: str
    experiment_id: uuid.UUID | None
    revision: str
    dataset_id: uuid.UUID | None = None


def question_key(kind: str, payload: bytes, subject: uuid.UUID, revision: str) -> str:
    """The key of every question: what a computation of ``kind`` answers from ``payload`` on ``subject`` (the
    experiment or dataset it reads) at ``revision``, asked in the request's workspace (another workspace's
    identical question is another question: its job is not ours)."""
    digest = hashlib.sha256()
    for part in (kind.encode(), payload, subject.bytes, revision.encode(), acting_workspace().encode()):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def ask(kind: str, payload: bytes, experiment_id: uuid.UUID, revision: str) -> Question:
    """The question ``kind`` answers from ``payload`` on the experiment's data at ``revision``."""
    return Question(question_key(kind, payload, experiment_id, revision), experiment_id, revision)


def ask_of_dataset(kind: str, payload: bytes, dataset_id: uuid.UUID, revision: str) -> Question:
    """The question ``kind`` answers from ``payload`` on the geo dataset at ``revision`` (its version read)."""
    return Question(question_key(kind, payload, dataset_id, revision), None, revision, dataset_id)


async def kept_answer(connection: Connection, question: Question, answer_type: Any) -> tuple[Any, datetime] | None:
    """The question's kept answer (decoded as ``answer_type``) and when it was computed, if any."""
    row = await connection.fetchrow(QUERIES["select_kept_answer"], question.key)
    if row is None:
        return None
    return msgspec.json.decode(row["answer"], type=answer_type), row["computed_at"]


async def keep_answer(connection: Connection, question: Question, answer: Any) -> None:
    """Keep the question's answer (an identical one kept meanwhile stays; nothing when what it read has been
    deleted meanwhile)."""
    with contextlib.suppress(asyncpg.ForeignKeyViolationError):  # it is gone, and its answers with it
        await connection.execute(
            QUERIES["keep_answer"],
            question.key,
            question.experiment_id,
            question.revision,
            msgspec.json.encode(answer),
            question.dataset_id,
        )


async def submit_question_job(
    pool: asyncpg.Pool, queue_pool: asyncpg.Pool, kind: str, subject: str, payload: bytes, question: Question
) -> Job:
    """Queue a job for the question, or the job already queued or running for it."""
    async with queue_pool.acquire() as connection, connection.transaction():
        job_id = await connection.fetchval(
            QUERIES["insert_question_job"],
            uuid.uuid4(),
            kind,
            subject,
            payload,
            current_key_id(),
            question.key,
            acting_workspace(),
        )
        if job_id is not None:
            await queue_queries(connection).enqueue(JOB_ENTRYPOINT, job_id.bytes)
        else:
            job_id = await connection.fetchval(QUERIES["select_question_job"], question.key)
    async with pool.acquire() as connection:
        job = await get_job(connection, job_id)
    assert job is not None
    return job


async def job_in_flight(pool: asyncpg.Pool, question: Question) -> Job | None:
    """The queued or running job that answers the question, if any."""
    async with pool.acquire() as connection:
        job_id = await connection.fetchval(QUERIES["select_job_in_flight"], question.key)
        return None if job_id is None else await get_job(connection, job_id)


async def answered_job(pool: asyncpg.Pool, question: Question) -> Job | None:
    """The newest job that succeeded on the question, if it is still kept."""
    async with pool.acquire() as connection:
        job_id = await connection.fetchval(QUERIES["select_answered_job"], question.key)
        return None if job_id is None else await get_job(connection, job_id)


async def answer_by_job(
    pool: asyncpg.Pool, queue_pool: asyncpg.Pool, kind: str, subject: str, payload: bytes, question: Question
) -> Answer[Job]:
    """For work that is always a job: the finished job that answered ``question`` (as the value, computed when
    it finished), else the job queued or running for it, else a new one."""
    answered = await answered_job(pool, question)
    if answered is not None:
        return Answer(value=answered, computed_at=answered.finished_at)
    return Answer(job=await submit_question_job(pool, queue_pool, kind, subject, payload, question))


@dataclass
class _Flight:
    """A computation in this process and the requests waiting on it."""

    task: asyncio.Future[Any]
    progress: ProgressReporter
    waiters: int = 0


# In-flight computations of this process, by event loop and question key.
_flights: dict[tuple[int, str], _Flight] = {}


async def answer_once(
    pool: asyncpg.Pool,
    queue_pool: asyncpg.Pool,
    kind: str,
    subject: str,
    payload: bytes,
    question: Question,
    answer_type: Any,
    compute: Callable[[ProgressReporter], Awaitable[T]],
    wait_seconds: float,
) -> Answer[T]:
    """The kept answer to ``question``; else ``compute``'s (shared with identical requests in flight) if it ends
    within ``wait_seconds``; else the job that computes it (one per question)."""
    async with pool.acquire() as connection:
        kept = await kept_answer(connection, question, answer_type)
    if kept is not None:
        return Answer(value=kept[0], computed_at=kept[1])
    slot = (id(asyncio.get_running_loop()), question.key)
    flight = _flights.get(slot)
    if flight is None:
        job = await job_in_flight(pool, question)
        if job is not None:
            return Answer(job=job)
        if wait_seconds <= 0:
            return Answer(job=await submit_question_job(pool, queue_pool, kind, subject, payload, question))
        # An identical request may have started it while this one looked for a job.
        flight = _flights.get(slot) or _start(pool, slot, question, compute)
    flight.waiters += 1
    try:
        await asyncio.wait({flight.task}, timeout=wait_seconds)
    except BaseException:
        flight.waiters -= 1
        if flight.waiters == 0 and not flight.task.done():  # nobody waits for it any more
            flight.progress.cancel()
            flight.task.cancel()
        raise
    flight.waiters -= 1
    if flight.task.done() and not flight.task.cancelled():
        return Answer(value=flight.task.result())
    job = await submit_question_job(pool, queue_pool, kind, subject, payload, question)
    flight.progress.cancel()  # the worker computes it afresh; identical requests now get the job
    flight.task.cancel()
    return Answer(job=job)


def _start(
    pool: asyncpg.Pool,
    slot: tuple[int, str],
    question: Question,
    compute: Callable[[ProgressReporter], Awaitable[T]],
) -> _Flight:
    progress = ProgressReporter()

    async def compute_and_keep() -> T:
        value = await compute(progress)
        async with pool.acquire() as connection:
            await keep_answer(connection, question, value)
        return value

    flight = _Flight(asyncio.ensure_future(compute_and_keep()), progress)
    _flights[slot] = flight

    def landed(_: object) -> None:
        if _flights.get(slot) is flight:
            del _flights[slot]

    flight.task.add_done_callback(landed)
    return flight
