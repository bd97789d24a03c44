"""Jobs and their parts in PostgreSQL: the statements in ``queries.sql``, run with asyncpg."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from api.auth.caller import acting_workspace, adopt_workspace, workspace_filter
from api.db.database import Connection
from api.db.sql_queries import load_queries
from api.http.errors import Problem

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))

Row = asyncpg.Record


class JobRepository:
    """Reads and writes jobs; callers own the transaction. JSON columns need the service's pool codecs."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    async def insert(self, job_id: UUID, kind: str, subject: str, payload: bytes, created_by: UUID | None) -> Row:
        row: Row | None = await self.connection.fetchrow(
            QUERIES["insert_job"], job_id, kind, subject, payload, created_by, acting_workspace()
        )
        assert row is not None
        return row

    async def get(self, job_id: UUID) -> Row | None:
        """The job, if it is in the request's workspace (:func:`api.auth.caller.workspace_filter`)."""
        row: Row | None = await self.connection.fetchrow(QUERIES["select_job"], job_id, workspace_filter())
        if row is not None:
            adopt_workspace(row["workspace"])
        return row

    async def page(
        self, *, kind: str | None, status: str | None, after: tuple[datetime, UUID] | None, limit: int
    ) -> list[Row]:
        created_at, last_id = after if after else (None, None)
        rows: list[Row] = await self.connection.fetch(
            QUERIES["list_jobs"], kind, status, created_at, last_id, limit, workspace_filter()
        )
        return rows

    async def start_attempt(self, job_id: UUID) -> Row | None:
        row: Row | None = await self.connection.fetchrow(QUERIES["start_attempt"], job_id)
        return row

    async def record_progress(self, job_id: UUID, attempt: int, fraction: float) -> str | None:
        """Heartbeat; the job's status (``None`` when the job is gone)."""
        status: str | None = await self.connection.fetchval(QUERIES["record_progress"], job_id, attempt, fraction)
        return status

    async def finish(
        self, job_id: UUID, attempt: int, status: str, result_json: str | None, error: Problem | None
    ) -> bool:
        """End the job (only the attempt that runs it can); whether this call ended it."""
        done: str = await self.connection.execute(QUERIES["finish_job"], job_id, attempt, status, result_json, error)
        return done == "UPDATE 1"

    async def cancel(self, job_id: UUID) -> None:
        await self.connection.execute(QUERIES["cancel_job"], job_id, workspace_filter())

    async def set_parts(self, job_id: UUID, task: str, payloads: list[bytes], reduce_task: str) -> None:
        await self.connection.execute(QUERIES["set_parts"], job_id, len(payloads), reduce_task)
        await self.connection.execute(QUERIES["insert_parts"], job_id, task, payloads)

    async def start_part(self, job_id: UUID, index: int) -> Row | None:
        row: Row | None = await self.connection.fetchrow(QUERIES["start_part"], job_id, index)
        return row

    async def finish_part(self, job_id: UUID, index: int, result: bytes) -> bool:
        """Store a part's result; whether this call stored it (a retried part may have been stored already)."""
        done: str = await self.connection.execute(QUERIES["finish_part"], job_id, index, result)
        return done == "UPDATE 1"

    async def count_part_done(self, job_id: UUID) -> Row | None:
        row: Row | None = await self.connection.fetchrow(QUERIES["count_part_done"], job_id)
        return row

    async def claim_reduce(self, job_id: UUID, silence: timedelta) -> Row | None:
        """The job's payload and reduce task when this caller is the one to reduce it now, else ``None``."""
        row: Row | None = await self.connection.fetchrow(QUERIES["claim_reduce"], job_id, silence)
        return row

    async def hand_back_job(self, job_id: UUID, attempt: int) -> bool:
        """Queue the job again, that attempt not counted; whether it was still this attempt's to give back."""
        return await self.connection.fetchval(QUERIES["hand_back_job"], job_id, attempt) is not None

    async def hand_back_part(self, job_id: UUID, index: int) -> bool:
        """Queue the part again, that start not counted; whether it was still running."""
        return await self.connection.fetchval(QUERIES["hand_back_part"], job_id, index) is not None

    async def release_reduce(self, job_id: UUID) -> bool:
        """Give up the claim on the job's reduce; whether the job still waits for it."""
        return await self.connection.fetchval(QUERIES["release_reduce"], job_id) is not None

    async def part_results(self, job_id: UUID) -> list[bytes]:
        rows: list[Any] = await self.connection.fetch(QUERIES["select_part_results"], job_id)
        return [bytes(r["result"]) for r in rows]

    async def forget_old(self, retention: timedelta) -> None:
        await self.connection.execute(QUERIES["forget_old_jobs"], retention)


class WorkerRepository:
    """The ``job_workers`` rows: which worker processes are alive (their heartbeats), for ``/health``."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    async def heartbeat(self, worker_id: UUID, host: str, pid: int) -> None:
        await self.connection.execute(QUERIES["worker_heartbeat"], worker_id, host, pid)

    async def forget(self, worker_id: UUID) -> None:
        await self.connection.execute(QUERIES["forget_worker"], worker_id)

    async def forget_dead(self) -> None:
        await self.connection.execute(QUERIES["forget_dead_workers"])

    async def health(self, silence: timedelta) -> Row:
        """``live`` (workers heard from within ``silence``), ``last_heartbeat``, ``queued`` and
        ``oldest_queued_seconds`` (``None`` when nothing is queued)."""
        row: Row | None = await self.connection.fetchrow(QUERIES["worker_health"], silence)
        assert row is not None
        return row
