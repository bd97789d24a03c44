"""A ``COPY`` that fails at once when its connection is lost, instead of waiting for ever.

asyncpg (0.32) writes a ``COPY``'s data under the transport's flow control: when the socket's buffer is
full it waits for the transport to allow writing again. If the server closes the connection meanwhile
(a terminated backend, a postmaster that died), ``connection_lost`` fails the query's waiter but never
wakes the copy, which then waits for its whole timeout (an hour for bulk loads) while the request
holds the client's upload unread. On a Unix socket (the embedded server) the buffer fills at once, so
this is what a lost connection during an upload looked like there.

:func:`copy_until_lost` runs the copy beside a termination listener: when the connection goes, the copy
is cancelled and :class:`asyncpg.ConnectionDoesNotExistError` raised (mapped to 503 with Retry-After).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, TypeVar

import asyncpg

from api.db.database import Connection

T = TypeVar("T")


async def copy_until_lost(connection: Connection, copy: Awaitable[T]) -> T:
    """Await ``copy`` (a ``COPY`` on ``connection``); if the connection is lost first, cancel it and raise
    :class:`asyncpg.ConnectionDoesNotExistError`."""
    task = asyncio.ensure_future(copy)
    lost = False

    def on_lost(_: Any) -> None:
        nonlocal lost
        lost = True
        task.cancel()

    connection.add_termination_listener(on_lost)
    try:
        return await task
    except asyncio.CancelledError:
        if lost and not _cancelled_from_outside():
            raise asyncpg.ConnectionDoesNotExistError("the connection was closed in the middle of a COPY") from None
        raise
    finally:
        if not task.done():  # the caller was cancelled: so is the copy
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        with contextlib.suppress(asyncpg.InterfaceError):  # a lost pooled connection is detached from its proxy
            connection.remove_termination_listener(on_lost)


def _cancelled_from_outside() -> bool:
    current = asyncio.current_task()
    return current is not None and current.cancelling() > 0
