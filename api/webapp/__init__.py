"""``/app``: the marketers' pages — plain HTML, CSS and JavaScript modules served as static files.

No build step and no separate server: the API serves the files itself and they call ``/v1`` with the
API key the user types in (kept in ``sessionStorage``), like any client. The files are open; ``/v1``
stays behind the key. Charts are the API's own Vega-Lite specs drawn by the vendored vega-embed.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.static_files import create_static_files_router

STATIC_DIR = Path(__file__).parent / "static"
APP_PATH = "/app"


def webapp_router() -> Router:
    """The router serving ``STATIC_DIR`` under ``/app`` (``/app/`` answers ``index.html``)."""
    return create_static_files_router(
        path=APP_PATH, directories=[STATIC_DIR], html_mode=True, name="webapp", include_in_schema=False
    )
