"""``HEAD`` on every ``GET`` route (RFC 9110 §9.3.2): the GET's status and headers, without its body.

Litestar serves HEAD only where a handler declares it, and refuses HEAD handlers that return a body, so
``HEAD /health`` was 405. Here a HEAD request is routed as a GET on a copy of the scope (the server's own
scope keeps HEAD, so it too knows to send no body); the answer's status and headers pass through,
``Content-Length`` included, and its body is dropped. The GET's guard applies: a ``/v1`` HEAD needs a
``read`` key, like the GET.
"""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send


def head_as_get(app: ASGIApp) -> ASGIApp:
    """``app`` answering HEAD as it answers GET, without the body."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] != "HEAD":
            await app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await app({**scope, "method": "GET"}, receive, send_headers_only)

    return middleware
