"""The geo design page: upload a panel, run a market selection job, follow it, create the experiment."""

from __future__ import annotations

import csv
import uuid
from pathlib import Path

from litestar import Litestar
from litestar.testing import AsyncTestClient
from playwright.async_api import Page, expect

from tests.api.test_matched_pairs import design_csv
from tests.browser.conftest import PHONE, drawn_chart, expect_console_errors, screenshots_fit_a_phone
from tests.conftest import DATA_DIR

MARKETS = 8  # a small panel keeps the job to a second or two


def small_panel(folder: Path) -> Path:
    """The first MARKETS markets of GeoLift's walkthrough history (2021-01-01..2021-03-31) as a CSV file."""
    with (DATA_DIR / "geolift" / "GeoLift_PreTest.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    markets = sorted({row["location"] for row in rows})[:MARKETS]
    path = folder / "panel.csv"
    path.write_text(
        "date,geo,kpi\n" + "".join(f"{r['date']},{r['location']},{r['Y']}\n" for r in rows if r["location"] in markets)
    )
    return path


# Every job status the page shows, in order, as a user would have seen them.
RECORD_STATUSES = """
window.jobStatuses = [];
new MutationObserver(() => {
  const text = document.getElementById("job-status")?.textContent;
  if (text && window.jobStatuses.at(-1) !== text) window.jobStatuses.push(text);
}).observe(document, { subtree: true, childList: true, characterData: true });
"""


async def test_a_panel_upload_and_market_selection_show_progress_and_create_the_picked_design(
    page: Page, client: AsyncTestClient[Litestar], worker: None, tmp_path: Path
) -> None:
    await page.add_init_script(RECORD_STATUSES)
    await page.goto("/app/geo.html")
    await page.set_input_files("#panel-file", small_panel(tmp_path))
    await page.fill("#panel-name", "Eight markets")
    await page.click("#upload-submit")
    await expect(page.locator("#dataset-summary")).to_contain_text(f"{MARKETS} markets, 90 dates")
    dataset_id = await page.input_value("#dataset-id")
    assert dataset_id

    await page.fill("#treatment-sizes", "2")
    await page.fill("#durations", "10")
    await page.fill("#effect-sizes", "0, 0.1, 0.2")
    await page.fill("#search-budget", "0")
    await page.fill("#top", "3")
    await page.click("#selection-submit")
    await expect(page.locator("#job-status")).to_contain_text("succeeded, 100% done", timeout=60_000)
    statuses = await page.evaluate("window.jobStatuses")
    assert any("queued" in s or "running" in s for s in statuses[:-1]), statuses
    assert await page.eval_on_selector("#job-bar", "bar => bar.value") == 1
    await expect(page.locator("#selection-chart svg")).to_be_visible()
    rows = page.locator("#candidate-rows tr")
    assert await rows.count() >= 2
    marks = await drawn_chart(page, "#selection-chart")
    ranks = [label.split(" ")[0] for label in marks.per_series()]
    assert ranks == [f"#{rank}" for rank in range(1, await rows.count() + 1)]
    assert all(drawn["line"] == 1 and drawn["symbol"] == 3 for drawn in marks.per_series().values())

    await page.check("#rank-2")
    await page.fill("#experiment-name", "TV in two markets")
    await page.fill("#spend", "20000")
    await page.click("#experiment-submit")
    created = page.locator("#experiment-created a")
    await expect(created).to_have_text('"TV in two markets"')
    experiment_id = (await created.get_attribute("href") or "").split("id=")[-1]
    experiment = (await client.get(f"/v1/experiments/{experiment_id}")).json()
    second_markets = await rows.nth(1).locator("td").nth(1).inner_text()
    assert experiment["treatment_markets"] == second_markets.split(", ")
    assert experiment["design_source"]["rank"] == 2
    assert experiment["dataset_id"] == dataset_id
    assert experiment["spend"] == 20000.0
    assert await screenshots_fit_a_phone(page, "geo-design") <= 0, f"horizontal overflow at {PHONE} px"


async def test_a_refused_market_selection_names_the_field_on_the_form(page: Page) -> None:
    expect_console_errors(page, "status of 400")  # Chromium's own line for the refusal the test provokes
    await page.goto("/app/geo.html")
    await page.fill("#dataset-id", str(uuid.uuid4()))
    await page.fill("#treatment-sizes", "0, 2")
    await page.click("#selection-submit")
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("Markets to treat")
    await expect(alert).to_contain_text("treatment_sizes")
    await expect(page.locator("#treatment-sizes")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#job-progress")).to_be_hidden()


async def test_a_matched_pair_design_shows_its_precision_against_pairs_kept(
    page: Page, worker: None, tmp_path: Path
) -> None:
    panel = tmp_path / "pairs.csv"
    panel.write_text(design_csv(geos=24, since="2020-10-01"))  # 12 pairs of trimmed_match's example
    await page.goto("/app/geo.html")
    await page.set_input_files("#panel-file", panel)
    await page.click("#upload-submit")
    await expect(page.locator("#dataset-summary")).to_contain_text("24 markets")
    assert await page.input_value("#pairs-dataset-id") == await page.input_value("#dataset-id")
    await page.fill("#budgets", "20000, 40000")
    await page.fill("#pair-counts", "12, 10, 8")
    await page.fill("#simulations", "30")
    await page.click("#pairs-submit")
    await expect(page.locator("#pairs-job-status")).to_contain_text("succeeded, 100% done", timeout=60_000)
    marks = await drawn_chart(page, "#pairs-chart")
    per_series = marks.per_series()
    assert list(per_series) == ["budget 20,000", "budget 40,000"]
    assert all(drawn["line"] == 1 and drawn["symbol"] == 3 for drawn in per_series.values())
    recommended = [text for text in marks.texts() if text.startswith("recommended: ")]
    assert len(recommended) == 1
    rows = page.locator("#pair-design-rows tr")
    await expect(rows).to_have_count(3)
    pairs = recommended[0].removeprefix("recommended: ").removesuffix(" pairs")
    await expect(page.locator("#pair-design-rows")).to_contain_text(f"{pairs} (recommended)")
    assert await screenshots_fit_a_phone(page, "geo-matched-pairs") <= 0, f"horizontal overflow at {PHONE} px"
