"""A response sent before its request's body has been read to the end closes the connection.

To find the next request on a kept-alive connection, uvicorn reads and discards whatever is left of the
current request's body after the response (uvicorn issue 38). When the service answers an upload early (its
database connection died mid-``COPY``: 503; the body passed its cap: 413; a CSV line was refused: 400), the
client therefore goes on sending the rest, which for a streamed upload may be gigabytes or never end; and
most clients (httpx, requests, curl without ``Expect: 100-continue``) read the answer only once they have
sent the whole body, or once a write fails. A client streaming a million units kept writing for minutes
after its 503 had been sent (issue 22).

:func:`close_after_unread_body` marks such a response ``Connection: close``: the server closes the connection
as soon as the response is written (uvicorn does for an application's ``Connection: close``, uvicorn issue
37) and reads nothing more. The client's next write fails and it reads the answer waiting for it (httpx and
httpcore do, encode/httpx#878). A request whose body was read in full, or that has none, keeps its
connection.
"""

from __future__ import annotations

from collections.abc import Iterable

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

CLOSE = (b"connection", b"close")


def has_body(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether a request with these (lower-case) headers carries a body (RFC 9112 §6.3)."""
    for name, value in headers:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


def close_after_unread_body(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: ``Connection: close`` on a response that starts before the request's body has been
    received to its end (or the client went away)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or not has_body(scope["headers"]):
            await app(scope, receive, send)
            return
        body_read = False

        async def receive_tracked() -> ReceiveMessage:
            nonlocal body_read
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_read = True
            return message

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and not body_read:
                message["headers"] = [*message.get("headers", []), CLOSE]
            await send(message)

        await app(scope, receive_tracked, send_closing)

    return middleware
