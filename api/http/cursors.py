"""The page cursor of the lists ordered newest first (experiments, jobs, geo datasets).

A cursor is the last item's ``(created_at, id)``, the list's sort key, as URL-safe base64 without padding: the
next page starts strictly after it, so an item created meanwhile never repeats or skips one already listed.
"""

from __future__ import annotations

import base64
from datetime import datetime
from uuid import UUID

import asyncpg

from api.http.errors import invalid_field


def encode_cursor(created_at: datetime, item_id: UUID) -> str:
    raw = f"{created_at.isoformat()}|{item_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """The ``(created_at, id)`` a cursor holds; 400 naming ``cursor`` for one this service did not issue."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, item_id = base64.urlsafe_b64decode(padded).decode().split("|")
        return datetime.fromisoformat(created), UUID(item_id)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid_field("cursor", "is not a cursor this service issued") from exc


def page_start(cursor: str | None) -> tuple[datetime, UUID] | None:
    """Where the page asked for starts: strictly after the cursor's item, or at the newest without one."""
    return decode_cursor(cursor) if cursor else None


def split_page(rows: list[asyncpg.Record], limit: int) -> tuple[list[asyncpg.Record], str | None]:
    """The page of ``rows`` read ``limit + 1`` at a time (the extra row only tells that another page exists)
    and the cursor of the next page, ``None`` on the last."""
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    return page, encode_cursor(page[-1]["created_at"], page[-1]["id"])
