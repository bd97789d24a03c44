"""What one HTTP connection may cost the server: a cap on request headers (431) and on the time to send them.

uvicorn's httptools protocol buffers a request's head without limit (a 64 MB header was read whole and
answered 200) and waits for it for ever: a client that opens a connection and sends nothing, or trickles
a header a byte at a time (slowloris), holds a connection and its memory as long as it likes.
:func:`limited_http_protocol` makes the protocol :func:`uvicorn_options` gives ``counterfact serve``:

* the bytes of a request's head (request line and headers) are counted *before* the parser buffers them;
  past ``max_header_bytes`` the answer is ``431 Request Header Fields Too Large`` and the connection closes;
* a head not complete ``header_timeout_seconds`` after the connection opened (or after the first byte of a
  later request on a kept-alive connection) is answered ``408 Request Timeout`` and the connection closes.

* a connection closed while its request's body is still arriving (the answer came first and said
  ``Connection: close``: :mod:`api.http.unread_bodies`) is closed the way RFC 9112 §9.6 asks: its sending side
  first, then the rest of the body is read and discarded for at most ``LINGER_SECONDS`` (or until the client
  closes too), then the whole connection. Closed at once, the socket would answer the client's next bytes
  with a reset, and a client that reads only once its body is sent would get a connection error instead of
  the answer (httpx's ``AsyncClient`` on a connection it has read from before: anyio leaves the answer
  unread in the socket, and asyncio closes the socket when the write fails).

Idle kept-alive connections close after ``keep_alive_seconds`` (uvicorn's ``timeout_keep_alive``) and past
``limit_concurrency`` connections or tasks uvicorn answers 503: together these bound what idle, trickling
or merely numerous connections can hold. A request body is not timed: a large upload may legitimately
pause while the server, not the client, is slow (flow control).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import msgspec
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.http.errors import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_BASE, Problem
from api.settings import Settings, get_settings

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}
# How long the rest of a request's body is read (and discarded) after its early answer, at most: a client
# that sends a few more megabytes reads its answer; one that would send for ever is cut off in seconds.
LINGER_SECONDS = 5.0


class LingeringTransport:
    """A connection's transport whose ``close`` lingers while the request's body is still arriving: it closes
    the sending side (the answer is flushed first), keeps reading for up to ``LINGER_SECONDS``, then closes.
    Every other attribute is the transport's own."""

    def __init__(self, transport: asyncio.Transport, body_pending: Callable[[], bool]) -> None:
        self.transport = transport
        self.body_pending = body_pending
        self.lingering = False
        self._timer: asyncio.TimerHandle | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)

    def is_closing(self) -> bool:
        return self.lingering or self.transport.is_closing()

    def close(self) -> None:
        if (
            self.lingering
            or not self.body_pending()
            or self.transport.is_closing()
            or not self.transport.can_write_eof()
        ):
            self.lingering = False
            if self._timer is not None:
                self._timer.cancel()
            self.transport.close()
            return
        self.lingering = True
        self.transport.write_eof()
        self.transport.resume_reading()
        self._timer = asyncio.get_running_loop().call_later(LINGER_SECONDS, self.close)


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a size and a time limit on each request's head.

    The limits are the process's settings (:func:`api.settings.get_settings`, read from the environment in
    each uvicorn worker process, which is why this class is not configured by arguments: uvicorn pickles the
    class by name to start its workers); :func:`limited_http_protocol` makes one with other limits.
    """

    max_header_bytes: int | None = None
    header_timeout_seconds: float | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self._max_head = settings.max_header_bytes if self.max_header_bytes is None else self.max_header_bytes
        self._head_seconds = (
            settings.header_timeout_seconds if self.header_timeout_seconds is None else self.header_timeout_seconds
        )
        self._head_open = True
        self._head_bytes = 0
        self._head_tail = b""  # the last bytes of the head so far, to find its end across reads
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_pending = False  # a request's head has arrived, not yet the end of its body
        self._lingering: LingeringTransport | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._lingering = LingeringTransport(transport, lambda: self._body_pending)
        super().connection_made(cast(asyncio.Transport, self._lingering))
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        if self._lingering is not None and self._lingering.lingering:
            self._lingering.close()  # stops its timer
        super().connection_lost(exc)

    def eof_received(self) -> None:
        if self._lingering is not None and self._lingering.lingering:
            self._lingering.close()  # the client has stopped sending: nothing left to wait for
        super().eof_received()

    def data_received(self, data: bytes) -> None:
        if self._lingering is not None and self._lingering.lingering:
            return  # the rest of a body whose request was answered: discarded, never parsed
        if self._head_open:
            # Only the head counts: a read often carries the head and the first part of the body together.
            seen = self._head_tail + data
            end = seen.find(b"\r\n\r\n")
            self._head_bytes += len(data) if end < 0 else max(end + 4 - len(self._head_tail), 0)
            self._head_tail = seen[-3:]
            if self._head_bytes > self._max_head:
                self._refuse(431, f"The request's headers exceed {self._max_head} bytes.")
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_timer is None:
            self._start_head_timer()

    def on_headers_complete(self) -> None:
        self._head_open = False
        self._body_pending = True
        self._stop_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._body_pending = False
        super().on_message_complete()
        self._head_open = True  # what arrives next is the next request's head
        self._head_bytes = 0
        self._head_tail = b""

    def _start_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self._head_seconds, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._head_open and not self.transport.is_closing():
            self._refuse(408, f"The request's headers did not arrive within {self._head_seconds:g} s.")

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` as a problem document and close the connection (the rest is never read)."""
        self._stop_head_timer()
        slug = "request-header-fields-too-large" if status == 431 else "request-timeout"
        title = _REASONS[status].decode()
        body = msgspec.json.encode(Problem(type=PROBLEM_TYPE_BASE + slug, title=title, status=status, detail=message))
        head = b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status])
        length = b"content-length: %d\r\n" % len(body)
        headers = b"content-type: " + PROBLEM_MEDIA_TYPE.encode() + b"\r\n" + length + b"connection: close\r\n\r\n"
        self.transport.write(head + headers + body)
        self.transport.close()


def limited_http_protocol(settings: Settings) -> type[LimitedHttpToolsProtocol]:
    """The protocol with the limits of ``settings`` rather than the environment's (one process only: the
    class it makes cannot be pickled)."""
    return type(
        "ConfiguredHttpToolsProtocol",
        (LimitedHttpToolsProtocol,),
        {"max_header_bytes": settings.max_header_bytes, "header_timeout_seconds": settings.header_timeout_seconds},
    )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.run`` that bound connections, for the process's ``settings``."""
    return {
        "http": LimitedHttpToolsProtocol,
        "timeout_keep_alive": settings.keep_alive_seconds,
        "limit_concurrency": settings.limit_concurrency or None,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
    }
