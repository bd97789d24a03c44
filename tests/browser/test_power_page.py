"""The power calculator at /app/: the API's answer on the page, by mouse or keyboard alone."""

from __future__ import annotations

import httpx
from playwright.async_api import Page, expect

from tests.browser.conftest import PHONE, drawn_chart, expect_console_errors, screenshots_fit_a_phone

DESIGN = {"baseline": "0.03", "mde": "0.08", "holdout-fraction": "0.15", "daily-units": "25000"}


def api_answer(live_server_url: str, api_key: str) -> dict[str, object]:
    body = {
        "metric": {"kind": "proportion", "baseline": 0.03},
        "solve_for": "sample_size",
        "mde": {"relative": 0.08},
        "holdout_fraction": 0.15,
        "power": 0.8,
        "alpha": 0.05,
        "comparisons": 1,
        "daily_units": 25000,
    }
    response = httpx.post(
        f"{live_server_url}/v1/power/holdout", json=body, headers={"Authorization": f"Bearer {api_key}"}
    )
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


def test_the_pages_and_chart_libraries_are_open_while_v1_needs_a_key(live_server_url: str) -> None:
    pages = ("/app/", "/app/geo.html", "/app/experiment.html", "/app/common.js", "/app/app.css")
    vendored = tuple(f"/app/vendor/{name}.min.js" for name in ("vega-5.33.1", "vega-lite-5.23.0", "vega-embed-6.29.0"))
    for path in pages + vendored:
        assert httpx.get(live_server_url + path).status_code == 200, path
    assert httpx.get(live_server_url + "/v1/experiments").status_code == 401


async def test_the_power_calculator_shows_the_sample_size_the_api_computes(
    page: Page, live_server_url: str, api_key: str
) -> None:
    answer = api_answer(live_server_url, api_key)
    await page.goto("/app/")
    for field, value in DESIGN.items():
        await page.fill(f"#{field}", value)
    await page.click("#power-submit")
    sample_size = answer["sample_size"]
    assert isinstance(sample_size, dict)
    await expect(page.locator("#sample-total")).to_have_text(f"{sample_size['total']:,}")
    await expect(page.locator("#sample-holdout")).to_have_text(f"{sample_size['holdout']:,}")
    await expect(page.locator("#duration")).to_have_text(f"{answer['duration_days']} days")
    await expect(page.locator("#power-chart svg")).to_be_visible()
    marks = await drawn_chart(page, "#power-chart")
    (line,) = marks.drawn("line")
    assert line.points == len(marks.drawn("symbol")) > 1
    assert marks.axis_titles[1] == "Power"
    assert await screenshots_fit_a_phone(page, "power") <= 0, f"horizontal overflow at {PHONE} px"


async def test_the_power_form_works_with_the_keyboard_alone(
    keyless_page: Page, live_server_url: str, api_key: str
) -> None:
    page = keyless_page
    answer = api_answer(live_server_url, api_key)
    await page.goto("/app/")
    # Tab from the top: three page links, then the key field, its button, then the form in visual order.
    order = []
    for _ in range(6):
        await page.keyboard.press("Tab")
        order.append(await page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()"))
    assert order == ["Power calculator", "Geo design", "Experiment results", "api-key", "Use key", "metric-kind"]
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "the focused control shows no focus ring"

    await page.focus("#api-key")
    await page.keyboard.type(api_key)
    await page.keyboard.press("Enter")
    await expect(page.locator("#key-status")).to_have_text("Key saved for this tab.")
    await page.keyboard.press("Tab")  # the key's button
    await page.keyboard.press("Tab")  # Metric
    await page.keyboard.press("Tab")  # Baseline (the std-dev field is hidden for conversion rates)
    for field in ("baseline", "mde", "holdout-fraction"):
        assert await page.evaluate("document.activeElement.id") == field
        await page.keyboard.press("ControlOrMeta+A")
        await page.keyboard.type(DESIGN[field])
        await page.keyboard.press("Tab")
    for _ in range(3):  # power, alpha, comparisons keep their defaults
        await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.id") == "daily-units"
    await page.keyboard.press("ControlOrMeta+A")
    await page.keyboard.type(DESIGN["daily-units"])
    await page.keyboard.press("Enter")
    sample_size = answer["sample_size"]
    assert isinstance(sample_size, dict)
    await expect(page.locator("#sample-total")).to_have_text(f"{sample_size['total']:,}")


async def test_a_problem_from_the_api_is_shown_with_the_field_named(page: Page) -> None:
    expect_console_errors(page, "status of 400")  # Chromium's own line for the refusal the test provokes
    await page.goto("/app/")
    await page.fill("#baseline", "1.5")
    await page.click("#power-submit")
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("Baseline")
    await expect(alert).to_contain_text("metric.baseline")
    await expect(page.locator("#baseline")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#baseline")).to_be_focused()
