"""An open-loop HTTP/1.1 load generator: requests leave at a fixed rate whatever the server is doing.

``wrk`` is closed-loop (a connection sends its next request only after the previous answer), so it
cannot hold a rate, and its ``delay()`` pacing sends every connection's request in the same instant.
Here request *i* is due at ``start + i / rate``; it goes out on an idle keep-alive connection (a new one
is opened when none is idle) whether or not earlier requests have been answered, so a stalled server
cannot lower the rate. Latency runs from the moment a request is written to the end of its answer; the
client's own lateness (send time minus due time, from timer granularity) is reported beside it. Raw
asyncio streams keep the client's cost to tens of microseconds per request, so it can share a 2-core
machine with the server it measures.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OpenLoopResult:
    scheduled: int
    answered: int
    failed: int
    seconds: float
    latencies_ms: np.ndarray  # one per answered request, from writing it to the end of its answer
    lateness_ms: np.ndarray  # one per sent request, send time minus due time
    connections: int

    def summary(self) -> str:
        p50, p90, p99 = np.percentile(self.latencies_ms, [50, 90, 99]) if self.answered else (np.nan,) * 3
        return (
            f"{self.answered}/{self.scheduled} answered at {self.answered / self.seconds:.0f}/s "
            f"({self.failed} failed, {self.connections} connections): p50 {p50:.2f} ms, p90 {p90:.2f} ms, "
            f"p99 {p99:.2f} ms, max {self.latencies_ms.max() if self.answered else np.nan:.2f} ms; "
            f"client lateness p99 {np.percentile(self.lateness_ms, 99):.2f} ms"
        )


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def exchange(self, request: bytes) -> int:
        """Send one request and read its whole answer; returns the status code."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return status


class _Load:
    """The state one open-loop run shares between its requests: idle connections and what was measured."""

    def __init__(self, host: str, port: int, max_connections: int) -> None:
        self.host = host
        self.port = port
        self.limit = asyncio.Semaphore(max_connections)
        self.idle: list[_Connection] = []
        self.opened = 0
        self.failed = 0
        self.latencies: list[float] = []
        self.lateness: list[float] = []

    async def connect(self) -> _Connection:
        """Open a new keep-alive connection and count it."""
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self.opened += 1
        return _Connection(reader, writer)

    async def exchange(self, request: bytes, due: float) -> tuple[_Connection, float, int] | None:
        """Send ``request`` on an idle connection (or a new one); (connection, send time, status), or None
        when it failed (counted)."""
        connection = self.idle.pop() if self.idle else None
        reused = connection is not None
        if connection is None:
            connection = await self.connect()
        sent = time.perf_counter()
        self.lateness.append((sent - due) * 1000)
        try:
            status = await connection.exchange(request)
        except asyncio.IncompleteReadError as error:
            connection.writer.close()
            if error.partial or not reused:
                self.failed += 1
                return None
            # The server closed this keep-alive connection while it sat idle: retry once on a new one.
            return await self.retry(request)
        except (OSError, ValueError):
            self.failed += 1
            connection.writer.close()
            return None
        return connection, sent, status

    async def retry(self, request: bytes) -> tuple[_Connection, float, int] | None:
        """Send ``request`` once more on a new connection; as :meth:`exchange`."""
        connection = await self.connect()
        sent = time.perf_counter()
        try:
            status = await connection.exchange(request)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            self.failed += 1
            connection.writer.close()
            return None
        return connection, sent, status

    async def one(self, request: bytes, due: float) -> None:
        """Send one request due at ``due`` and record its latency (2xx) or its failure."""
        async with self.limit:
            exchanged = await self.exchange(request, due)
            if exchanged is None:
                return
            connection, sent, status = exchanged
            finished = time.perf_counter()
            self.idle.append(connection)
        if 200 <= status < 300:
            self.latencies.append((finished - sent) * 1000)
        else:
            self.failed += 1


async def run_open_loop(
    host: str,
    port: int,
    path_for: Callable[[int], str],
    *,
    rate: float,
    seconds: float,
    max_connections: int = 64,
    headers: Mapping[str, str] | None = None,
    method: str = "GET",
    body: bytes = b"",
) -> OpenLoopResult:
    """``method`` ``path_for(i)`` (with ``body``, if any) for i = 0, 1, … at ``rate`` per second for ``seconds``
    with ``headers`` (an API key, say); 2xx counts as answered."""
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    if body:
        extra += f"Content-Length: {len(body)}\r\n"
    load = _Load(host, port, max_connections)

    async def one(index: int, due: float) -> None:
        request = f"{method} {path_for(index)} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode() + body
        await load.one(request, due)

    total = int(rate * seconds)
    tasks: list[asyncio.Task[None]] = []
    begin = time.perf_counter()
    for index in range(total):
        due = begin + index / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(one(index, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - begin
    for connection in load.idle:
        connection.writer.close()
    return OpenLoopResult(
        total, len(load.latencies), load.failed, elapsed, np.array(load.latencies), np.array(load.lateness), load.opened
    )
