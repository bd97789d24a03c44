"""Fixtures of the browser tests: Debian's Chromium driven by Playwright against the live server.

The browser is the system's (`/usr/bin/chromium`, apt package `chromium`, which .ci/run installs), never
a build Playwright downloads. Without it these tests fail: a browser test that skips would hide that the
pages were never tried. Screenshots go to ``test-artefacts/browser/`` (gitignored); the path is printed
at the end of the run.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = Path(os.environ.get("COUNTERFACT_CHROMIUM", "/usr/bin/chromium"))
ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "browser"
DESKTOP, PHONE = 1280, 390
KEY_STORAGE = "counterfact.apiKey"  # api/webapp/static/common.js


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"No Chromium at {CHROMIUM}: install Debian's `chromium` package (`.ci/run` does).")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def api_key(client: AsyncTestClient[Litestar]) -> str:
    """The admin key the ``client`` fixture made (after it emptied the tables)."""
    return str(client.headers["Authorization"]).removeprefix("Bearer ")


@asynccontextmanager
async def tab(browser: Browser, base_url: str, key: str | None) -> AsyncIterator[Page]:
    """A fresh tab at 1280 px (with ``key`` already saved in its sessionStorage); a script error fails."""
    context = await browser.new_context(viewport={"width": DESKTOP, "height": 900}, base_url=base_url)
    if key is not None:
        await context.add_init_script(f"sessionStorage.setItem({json.dumps(KEY_STORAGE)}, {json.dumps(key)})")
    opened = await context.new_page()
    script_errors: list[str] = []
    opened.on("pageerror", lambda error: script_errors.append(str(error)))
    blocked: list[str] = []  # what the /app Content-Security-Policy refused (api/webapp)
    opened.on("console", lambda message: blocked.extend([message.text] if "Security Policy" in message.text else []))
    try:
        yield opened
    finally:
        await context.close()
    assert script_errors == [], "uncaught errors in the page's scripts"
    assert blocked == [], "the Content-Security-Policy blocked part of the page"


@pytest.fixture
async def page(browser: Browser, live_server_url: str, api_key: str) -> AsyncIterator[Page]:
    """A tab on the live server with an API key saved, as a user who pasted theirs earlier."""
    async with tab(browser, live_server_url, api_key) as opened:
        yield opened


@pytest.fixture
async def keyless_page(browser: Browser, live_server_url: str) -> AsyncIterator[Page]:
    """A tab on the live server with no key saved yet."""
    async with tab(browser, live_server_url, None) as opened:
        yield opened


async def screenshots_fit_a_phone(page: Page, name: str) -> int:
    """Screenshots at 1280 and 390 px wide into ARTEFACTS; the page's horizontal overflow at 390 px."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    overflow = 0
    for width in (DESKTOP, PHONE):
        await page.set_viewport_size({"width": width, "height": 900})
        # Charts are as wide as their container and redraw on resize: wait for that frame.
        await page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        await page.wait_for_timeout(150)
        await page.screenshot(path=ARTEFACTS / f"{name}-{width}px.png", full_page=True)
        overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    await page.set_viewport_size({"width": DESKTOP, "height": 900})
    return int(overflow)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if ARTEFACTS.is_dir() and any(ARTEFACTS.iterdir()):
        terminalreporter.write_line(f"browser screenshots: {ARTEFACTS}")
