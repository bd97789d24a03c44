"""``GET /v1/jobs``: jobs newest first, a page at a time, by kind and status."""

from __future__ import annotations

import base64
from datetime import datetime
from uuid import UUID

import asyncpg

from api.errors import invalid_field
from api.jobs.repository import JobRepository, Row
from api.jobs.schemas import JobPage, JobSummary


def encode_cursor(created_at: datetime, job_id: UUID) -> str:
    raw = f"{created_at.isoformat()}|{job_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, job_id = base64.urlsafe_b64decode(padded).decode().split("|")
        return datetime.fromisoformat(created), UUID(job_id)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid_field("cursor", "is not a cursor this service issued") from exc


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
