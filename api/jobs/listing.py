"""``GET /v1/jobs``: jobs newest first, a page at a time, by kind and status."""

from __future__ import annotations

import asyncpg

from api.http.cursors import page_start, split_page
from api.jobs.queue import job_state
from api.jobs.repository import JobRepository, Row
from api.jobs.schemas import JobPage, JobSummary


def summary_from_row(row: Row) -> JobSummary:
    return JobSummary(**job_state(row))


async def list_jobs(
    pool: asyncpg.Pool, *, kind: str | None, status: str | None, cursor: str | None, limit: int
) -> JobPage:
    after = page_start(cursor)
    async with pool.acquire() as connection:
        rows = await JobRepository(connection).page(kind=kind, status=status, after=after, limit=limit + 1)
    page, next_cursor = split_page(rows, limit)
    return JobPage(items=[summary_from_row(row) for row in page], next_cursor=next_cursor)
