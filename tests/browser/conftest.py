"""Fixtures of the browser tests: Debian's Chromium driven by Playwright against the live server.

The browser is the system's (`/usr/bin/chromium`, apt package `chromium`, which .ci/run installs), never
a build Playwright downloads. Without it these tests fail: a browser test that skips would hide that the
pages were never tried. Screenshots of every page at 1280 and 390 px go to ``test-artefacts/browser/``
(gitignored; CI keeps them as artefacts); the path is printed at the end of the run.

A tab fails its test on an uncaught script error and on any error the page logs to the console, save those
the test said it provokes (:func:`expect_console_errors`, e.g. the browser's own line for a 404 it asked for).
Charts are read back as the SVG the page drew and checked with :mod:`tests.chart_marks`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright

from tests.chart_marks import ChartMarks, chart_marks

CHROMIUM = Path(os.environ.get("COUNTERFACT_CHROMIUM", "/usr/bin/chromium"))
ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "browser"
DESKTOP, PHONE = 1280, 390
KEY_STORAGE = "counterfact.apiKey"  # api/webapp/static/common.js
CHART_TIMEOUT_MS = 60_000
# Every chart drawn (common.js's drawChart) has been redrawn for its box's current width.
CHARTS_SETTLED = """() => [...document.querySelectorAll(".chart[data-width]")].every(
  (chart) => chart.clientWidth === 0
    || (chart.dataset.rendered === "true" && chart.dataset.width === String(chart.clientWidth))
)"""
_expected_console_errors: dict[int, list[re.Pattern[str]]] = {}  # id(page) -> what its test provokes


def expect_console_errors(page: Page, pattern: str) -> None:
    """Console errors matching ``pattern`` are what the test provokes (not a failure of the page)."""
    _expected_console_errors.setdefault(id(page), []).append(re.compile(pattern))


def _unexpected(page: Page, message: str) -> bool:
    return not any(p.search(message) for p in _expected_console_errors.get(id(page), []))


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
    console_errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            console_errors.append(f"{message.text} ({message.location.get('url', '')})")

    opened.on("pageerror", lambda error: script_errors.append(str(error)))
    blocked: list[str] = []  # what the /app Content-Security-Policy refused (api/webapp)
    opened.on("console", on_console)
    opened.on("console", lambda message: blocked.extend([message.text] if "Security Policy" in message.text else []))
    try:
        yield opened
    finally:
        await context.close()
        unexpected = [m for m in console_errors if _unexpected(opened, m)]
        _expected_console_errors.pop(id(opened), None)
    assert script_errors == [], f"uncaught errors in the page's scripts: {script_errors}"
    assert blocked == [], f"the Content-Security-Policy blocked part of the page: {blocked}"
    assert unexpected == [], f"errors in the page's console: {unexpected}"


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
    """Screenshots at 1280 and 390 px wide into ARTEFACTS, each once every chart has been redrawn for that width
    and checked to stay inside its box; the page's horizontal overflow at 390 px."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    overflow = 0
    for width in (DESKTOP, PHONE):
        await page.set_viewport_size({"width": width, "height": 900})
        # Charts are as wide as their container and redraw on resize: wait for that frame.
        await page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        await page.wait_for_function(CHARTS_SETTLED, timeout=CHART_TIMEOUT_MS)
        await page.wait_for_timeout(150)
        for chart in await page.query_selector_all(".chart[data-width]"):
            if await chart.is_visible():
                chart_id = await chart.get_attribute("id")
                cut = await chart_overflow(page, f"#{chart_id}")
                assert cut <= 0.5, f"#{chart_id} reaches {cut:.0f} px past its box at {width} px"
        await page.screenshot(path=ARTEFACTS / f"{name}-{width}px.png", full_page=True)
        overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    await page.set_viewport_size({"width": DESKTOP, "height": 900})
    return int(overflow)


async def drawn_chart(page: Page, selector: str) -> ChartMarks:
    """The marks of the chart the page drew into ``selector`` (once drawn), read from its SVG."""
    await page.wait_for_selector(f"{selector}[data-rendered='true'] svg", timeout=CHART_TIMEOUT_MS)
    svg: str = await page.eval_on_selector(f"{selector} svg", "svg => new XMLSerializer().serializeToString(svg)")
    return chart_marks(svg)


async def chart_overflow(page: Page, selector: str) -> float:
    """How far, in px, the chart's drawing (its title included) reaches past its box on either side."""
    overflow: float = await page.eval_on_selector(
        selector,
        """box => {
          const outer = box.getBoundingClientRect();
          let worst = 0;
          for (const item of box.querySelectorAll("svg text, svg path")) {
            const r = item.getBoundingClientRect();
            if (r.width === 0 && r.height === 0) continue;
            worst = Math.max(worst, outer.left - r.left, r.right - outer.right);
          }
          return worst;
        }""",
    )
    return overflow


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if ARTEFACTS.is_dir() and any(ARTEFACTS.iterdir()):
        terminalreporter.write_line(f"browser screenshots: {ARTEFACTS}")
