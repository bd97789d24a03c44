"""The ``/app`` pages carry a Content-Security-Policy, refuse framing and sniffing, and keep to their policy.

No browser here checks the policy against the pages (tests/browser does, where Chromium is installed), so
the pages' HTML is read: every script and stylesheet comes from this origin, no script is inline and no
element carries an inline event handler — what ``script-src 'self'`` would block.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.webapp import STATIC_DIR

Client = AsyncTestClient[Litestar]
PAGES = sorted(path.name for path in STATIC_DIR.glob("*.html"))


def _directives(policy: str) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


@pytest.mark.parametrize("path", ["/app/", *(f"/app/{page}" for page in PAGES), "/app/common.js", "/app/nope.js"])
async def test_every_app_answer_has_the_security_headers(client: Client, path: str) -> None:
    response = await client.get(path)
    directives = _directives(response.headers["content-security-policy"])
    assert directives["default-src"] == ["'none'"]
    assert directives["script-src"] == ["'self'", "'unsafe-eval'"]  # Vega compiles expressions with Function
    assert directives["connect-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


class _PageScan(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.inline_scripts = 0
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.handlers += [name for name in found if name.startswith("on")]
        if tag == "script":
            if found.get("src"):
                self.sources.append(str(found["src"]))
            else:
                self.inline_scripts += 1
        if tag == "link" and found.get("rel") == "stylesheet":
            self.sources.append(str(found["href"]))


@pytest.mark.parametrize("page", PAGES)
async def test_each_page_loads_only_same_origin_files_and_has_no_inline_script(client: Client, page: str) -> None:
    scan = _PageScan()
    scan.feed((await client.get(f"/app/{page}")).text)
    assert scan.sources and all(source.startswith("/app/") for source in scan.sources), scan.sources
    assert scan.inline_scripts == 0
    assert scan.handlers == []
    for source in scan.sources:
        assert (await client.get(source)).status_code == 200, source


def test_the_page_scripts_call_only_this_origin() -> None:
    for script in STATIC_DIR.glob("*.js"):
        assert not re.search(r"https?://", script.read_text(encoding="utf-8")), script.name
