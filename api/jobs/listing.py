"""``GET /v1/jobs``: jobs newest first, a page at a time, by kind and status."""

from __future__ import annotations

import asyncpg

from api.http.cursors import decode_cursor, encode_cursor
from api.jobs.repository import JobRepository, Row
from api.jobs.schemas import JobPage, JobSummary


def summary_from_row(row: Row) -> JobSummary:
    return JobSummary(
        id=str(row["id"]),
        kind=row["kind"],
        subject=row["subject"],
        status=row["status"],
        progress=float(row["progress"]),
        attempts=int(row["attempts"]),
        created_at=row["created_at"],
        updated_at=row["heartbeat_at"],
        finished_at=row["finished_at"],
        created_by=row["created_by"],
        workspace=row["workspace"],
    )


async def list_jobs(
    pool: asyncpg.Pool, *, kind: str | None, status: str | None, cursor: str | None, limit: int
) -> JobPage:
    after = decode_cursor(cursor) if cursor else None
    async with pool.acquire() as connection:
        rows = await JobRepository(connection).page(kind=kind, status=status, after=after, limit=limit + 1)
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if has_more else None
    return JobPage(items=[summary_from_row(row) for row in rows], next_cursor=next_cursor)
