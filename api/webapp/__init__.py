"""``/app``: the marketers' pages — plain HTML, CSS and JavaScript modules served as static files.

No build step and no separate server: the API serves the files itself and they call ``/v1`` with the
API key the user types in (kept in ``sessionStorage``), like any client. The files are open; ``/v1``
stays behind the key. Charts are the API's own Vega-Lite specs drawn by the vendored vega-embed.

Every answer under ``/app`` carries :data:`SECURITY_HEADERS`. The Content-Security-Policy allows scripts
from this origin only, plus ``'unsafe-eval'``: Vega compiles its expressions and field accessors with
``Function`` (the interpreter that avoids it is not vendored). Styles allow ``'unsafe-inline'`` because
vega-embed injects its own ``<style>`` element and Vega's SVG sets ``style`` attributes. No page may be
framed (clickjacking) and nothing is sniffed into another type. A path with a NUL byte (``/app/%00``)
is a 404, never the file system's ``ValueError``.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.exceptions import NotFoundException
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp, Message, Receive, Scope, Send

STATIC_DIR = Path(__file__).parent / "static"
APP_PATH = "/app"
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode("ascii")),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)


def secured_pages(app: ASGIApp) -> ASGIApp:
    """Middleware of the ``/app`` routes: 404 for a path with a NUL byte; the security headers on every answer."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if "\x00" in scope.get("path", ""):
            raise NotFoundException("No such page")

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await app(scope, receive, send_secured)

    return middleware


def webapp_router() -> Router:
    """The router serving ``STATIC_DIR`` under ``/app`` (``/app/`` answers ``index.html``)."""
    return create_static_files_router(
        path=APP_PATH,
        directories=[STATIC_DIR],
        html_mode=True,
        name="webapp",
        include_in_schema=False,
        middleware=[secured_pages],
    )
