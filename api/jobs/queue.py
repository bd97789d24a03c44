"""The job queue: jobs are rows of ``jobs``, dispatched to ``counterfact worker`` processes by pgqueuer.

pgqueuer keeps its own tables in the same database (installed here at start-up, once, under the
migration lock) and wakes workers with LISTEN/NOTIFY; a worker takes a job with ``FOR UPDATE SKIP
LOCKED`` and heartbeats it, and a job whose worker stops heartbeating is picked again by another. Our
``jobs`` row is what clients read: it is written in the same transaction as the enqueue, so a job is
never stored without being queued, nor queued without being stored.

pgqueuer's statements go through a pool without the service's JSON codecs (it encodes its own).
"""

from __future__ import annotations

import struct
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import msgspec
from pgqueuer import Queries

from api.auth.caller import current_key_id
from api.db.database import Connection, migration_lock
from api.http.errors import Problem
from api.jobs.repository import JobRepository, Row
from api.jobs.schemas import Job

JOB_ENTRYPOINT = "counterfact.job"
PART_ENTRYPOINT = "counterfact.part"
JOB_RETENTION = timedelta(days=30)


def job_state(row: Row) -> dict[str, Any]:
    """A stored job's fields that a job and a job in a list share: what it is, whose, and how far it got."""
    return {
        "id": str(row["id"]),
        "kind": row["kind"],
        "subject": row["subject"],
        "status": row["status"],
        "progress": float(row["progress"]),
        "attempts": int(row["attempts"]),
        "created_at": row["created_at"],
        "updated_at": row["heartbeat_at"],
        "finished_at": row["finished_at"],
        "created_by": row["created_by"],
        "workspace": row["workspace"],
    }


def job_from_row(row: Row) -> Job:
    """The API representation of a stored job (its result left as the JSON it was stored as)."""
    error = None if row["error"] is None else msgspec.convert(row["error"], Problem)
    return Job(**job_state(row), result=row["result"], error=error)


def part_payload(job_id: uuid.UUID, index: int) -> bytes:
    return job_id.bytes + struct.pack(">I", index)


def parse_part_payload(payload: bytes) -> tuple[uuid.UUID, int]:
    return uuid.UUID(bytes=payload[:16]), struct.unpack(">I", payload[16:20])[0]


def queue_queries(connection: Connection) -> Queries:
    """pgqueuer's statements on one of our connections (inside its transaction, when one is open)."""
    return Queries.from_asyncpg_connection(connection)  # type: ignore[arg-type]  # a pooled proxy works alike


async def install_queue_schema(connection: Connection) -> None:
    """Create pgqueuer's tables if they are not there (under the migration lock: replicas start together)."""
    queries = queue_queries(connection)
    async with migration_lock(connection):
        if not await queries.schema_is_installed():
            await queries.install()


async def submit_job(queue_pool: asyncpg.Pool, kind: str, subject: str, payload: bytes) -> uuid.UUID:
    """Store a ``queued`` job and enqueue it for a worker, in one transaction; its id. The job records
    the API key of the request that submits it (:func:`api.auth.caller.current_key_id`) as its creator."""
    job_id = uuid.uuid4()
    async with queue_pool.acquire() as connection, connection.transaction():
        await JobRepository(connection).insert(job_id, kind, subject, payload, current_key_id())
        await queue_queries(connection).enqueue(JOB_ENTRYPOINT, job_id.bytes)
    return job_id


async def enqueue_parts(
    queue_pool: asyncpg.Pool, job_id: uuid.UUID, task: str, payloads: list[bytes], reduce_task: str
) -> None:
    """Store a job's parts and enqueue one queue job each, in one transaction."""
    async with queue_pool.acquire() as connection, connection.transaction():
        await JobRepository(connection).set_parts(job_id, task, payloads, reduce_task)
        count = len(payloads)
        if count:
            await queue_queries(connection).enqueue(
                [PART_ENTRYPOINT] * count, [part_payload(job_id, i) for i in range(count)], [0] * count
            )


async def hand_back_job(queue_pool: asyncpg.Pool, job_id: uuid.UUID, attempt: int) -> None:
    """Put a job a stopping worker started back in the queue (that attempt not counted), in one transaction."""
    async with queue_pool.acquire() as connection, connection.transaction():
        if await JobRepository(connection).hand_back_job(job_id, attempt):
            await queue_queries(connection).enqueue(JOB_ENTRYPOINT, job_id.bytes)


async def hand_back_part(queue_pool: asyncpg.Pool, job_id: uuid.UUID, index: int) -> None:
    """Put a part a stopping worker started back in the queue (that start not counted), in one transaction."""
    async with queue_pool.acquire() as connection, connection.transaction():
        if await JobRepository(connection).hand_back_part(job_id, index):
            await queue_queries(connection).enqueue(PART_ENTRYPOINT, part_payload(job_id, index))


async def hand_back_reduce(queue_pool: asyncpg.Pool, job_id: uuid.UUID) -> None:
    """Release the reduce a stopping worker claimed and queue the job, whose next taker reduces it."""
    async with queue_pool.acquire() as connection, connection.transaction():
        if await JobRepository(connection).release_reduce(job_id):
            await queue_queries(connection).enqueue(JOB_ENTRYPOINT, job_id.bytes)


async def get_job(connection: Connection, job_id: uuid.UUID) -> Job | None:
    row = await JobRepository(connection).get(job_id)
    return None if row is None else job_from_row(row)


async def cancel_job(connection: Connection, job_id: uuid.UUID) -> Job | None:
    """Cancel a queued or running job (a finished one is left as it is); the job afterwards, or ``None``."""
    repository = JobRepository(connection)
    await repository.cancel(job_id)
    row = await repository.get(job_id)
    return None if row is None else job_from_row(row)


async def forget_old_jobs(connection: Connection) -> None:
    """Delete jobs that finished more than ``JOB_RETENTION`` ago (run at start-up)."""
    await JobRepository(connection).forget_old(JOB_RETENTION)


def result_json(value: Any) -> str:
    """A task's answer as the JSON text stored in ``jobs.result`` (bytes are taken as JSON already)."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode()
    return msgspec.json.encode(value).decode()
