"""Recording and reading the audit trail.

Services call :func:`record` inside the transaction of the change they make, so an event exists exactly
when its change does. The acting key comes from :func:`api.auth.caller.current_key`.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from api.audit.repository import AuditRepository
from api.audit.schemas import AuditEvent, AuditEventPage, EventAction, EventKey, GeoDatasetEvent, GeoDatasetEventPage
from api.auth.caller import current_key
from api.db.database import Connection
from api.http.errors import NotFound, invalid_field

EXPERIMENT = "experiment"
GEO_DATASET = "geo_dataset"


async def record(
    connection: Connection, experiment_id: UUID, action: EventAction, details: dict[str, Any] | None = None
) -> None:
    """Append an event about an experiment, in the caller's transaction, naming the acting key."""
    await _insert(connection, EXPERIMENT, experiment_id, action, details)


async def record_dataset_event(
    connection: Connection, dataset_id: UUID, action: EventAction, details: dict[str, Any] | None = None
) -> None:
    """Append an event about a geo dataset, in the caller's transaction, naming the acting key."""
    await _insert(connection, GEO_DATASET, dataset_id, action, details)


async def _insert(
    connection: Connection, subject_kind: str, subject_id: UUID, action: str, details: dict[str, Any] | None
) -> None:
    key = current_key()
    await AuditRepository(connection).insert(
        subject_kind=subject_kind,
        subject_id=subject_id,
        action=action,
        key_id=key.id if key else None,
        key_name=key.name if key else None,
        details=msgspec.to_builtins(details or {}),
    )


def _what_happened(row: asyncpg.Record) -> dict[str, Any]:
    """An event's fields whatever its subject: its id, action, time, key and details."""
    key = EventKey(id=row["key_id"], name=row["key_name"]) if row["key_id"] is not None else None
    return {"id": row["id"], "action": row["action"], "at": row["created_at"], "key": key, "details": row["details"]}


def _event(row: asyncpg.Record) -> AuditEvent:
    return AuditEvent(experiment_id=row["subject_id"], **_what_happened(row))


def _dataset_event(row: asyncpg.Record) -> GeoDatasetEvent:
    return GeoDatasetEvent(dataset_id=row["subject_id"], **_what_happened(row))


def _after_id(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit() or len(cursor) > 19:
        raise invalid_field("cursor", "is not a cursor this service issued")
    return int(cursor)


async def _page(
    pool: asyncpg.Pool, subject_kind: str, subject_id: UUID, cursor: str | None, limit: int
) -> tuple[list[asyncpg.Record], str | None]:
    """One page of a subject's events and the next cursor; 404 when it has none and never existed.

    Events outlive their subject: those of a deleted experiment or dataset stay readable."""
    after = _after_id(cursor)
    async with pool.acquire() as connection:
        repository = AuditRepository(connection)
        rows = await repository.list(subject_kind, subject_id, after, limit + 1)
        if not rows and after == 0 and not await repository.subject_exists(subject_kind, subject_id):
            raise NotFound(f"No {subject_kind.replace('_', ' ')} with id {subject_id}")
    has_more = len(rows) > limit
    rows = rows[:limit]
    return rows, str(rows[-1]["id"]) if has_more else None


async def list_experiment_events(
    pool: asyncpg.Pool, experiment_id: UUID, *, cursor: str | None, limit: int
) -> AuditEventPage:
    """An experiment's events, oldest first."""
    rows, next_cursor = await _page(pool, EXPERIMENT, experiment_id, cursor, limit)
    return AuditEventPage(items=[_event(row) for row in rows], next_cursor=next_cursor)


async def list_dataset_events(
    pool: asyncpg.Pool, dataset_id: UUID, *, cursor: str | None, limit: int
) -> GeoDatasetEventPage:
    """A geo dataset's events, oldest first."""
    rows, next_cursor = await _page(pool, GEO_DATASET, dataset_id, cursor, limit)
    return GeoDatasetEventPage(items=[_dataset_event(row) for row in rows], next_cursor=next_cursor)
