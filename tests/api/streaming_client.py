"""A client that streams a request body over a raw socket as long as the server lets it, and records what the
server answered and whether it closed the connection while the body was still being sent.

httpx reads an answer only once its body is sent or a write fails, so it cannot show a server that answers
early but keeps reading; a raw socket shows both: the bytes that got through and when the server hung up.
"""

from __future__ import annotations

import asyncio
import select
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import closing
from dataclasses import dataclass

WRITE_SECONDS = 30.0  # a write the server leaves unread this long fails the stream (it neither reads nor closes)


@dataclass(frozen=True)
class Streamed:
    answer: bytes  # everything the server sent
    body_bytes_sent: int  # the body's bytes the server accepted before it closed (or all of them)
    body_finished: bool  # the whole body was sent
    closed: bool  # the server closed the connection (a write failed or the end of the stream was read)

    @property
    def status(self) -> int:
        return int(self.answer.split(b" ", 2)[1]) if self.answer.startswith(b"HTTP/1.1 ") else 0

    def header(self, name: str) -> str | None:
        head = self.answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        for line in head.split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


def chunked_head(path: str, key: str, *, content_type: str = "text/csv") -> bytes:
    """The request line and headers of a ``POST`` to ``path`` with ``key``, its body to follow in chunks."""
    return (
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()


async def units_with_a_fault(
    fault_at: int, fault: Callable[[], Awaitable[None]], chunks_after: int = 600
) -> AsyncIterator[bytes]:
    """A CSV of unit ids (the ``unit`` header, then 25,000 ids a chunk) that calls ``fault`` before chunk
    ``fault_at``, then goes on sending ``chunks_after`` more, one every 0.1 s (600: a minute, longer than any
    answer may take)."""
    yield b"unit\n"
    for batch in range(fault_at + chunks_after):
        if batch == fault_at:
            await fault()
        elif batch > fault_at:
            await asyncio.sleep(0.1)
        yield b"".join(b"user-%d-%d\n" % (batch, i) for i in range(25_000))


def _read_available(connection: socket.socket) -> tuple[bytes, bool]:
    """What the server has sent so far without waiting, and whether it has closed the connection."""
    received = b""
    while select.select([connection], [], [], 0)[0]:
        try:
            chunk = connection.recv(65536)
        except ConnectionResetError:
            return received, True
        if not chunk:
            return received, True
        received += chunk
    return received, False


def _read_until_closed(connection: socket.socket, seconds: float) -> tuple[bytes, bool]:
    """What the server sends within ``seconds``, and whether it closed the connection meanwhile."""
    connection.settimeout(seconds)
    received = b""
    try:
        while chunk := connection.recv(65536):
            received += chunk
    except ConnectionResetError:
        return received, True
    except TimeoutError:
        return received, False
    return received, True


async def stream_upload(
    address: tuple[str, int],
    head: bytes,
    chunks: AsyncIterator[bytes],
    *,
    linger_seconds: float = 5.0,
    past_the_servers_end: bool = False,
) -> Streamed:
    """Send ``head`` (a request line and headers announcing ``Transfer-Encoding: chunked``, ending in a blank
    line), then each of ``chunks`` as one chunk, until they run out or the server closes the connection (its
    end of the stream, or with ``past_the_servers_end`` only a failed write: the server no longer reads at
    all); then wait up to ``linger_seconds`` for the rest of the answer and the close."""
    with closing(socket.create_connection(address)) as connection:
        connection.settimeout(WRITE_SECONDS)
        connection.sendall(head)
        answer, closed, sent, finished = b"", False, 0, False
        async for chunk in chunks:
            try:
                connection.sendall(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
            sent += len(chunk)
            received, closed = _read_available(connection)
            answer += received
            if closed and not past_the_servers_end:
                break
        else:
            finished = True
            try:
                connection.sendall(b"0\r\n\r\n")
            except (ConnectionResetError, BrokenPipeError):
                closed = True
        rest, closed_later = _read_until_closed(connection, linger_seconds)
        return Streamed(answer + rest, sent, finished, closed or closed_later)
