"""The experiment page: a holdout test's forest plot with its decisions; a geo test's counterfactual."""

from __future__ import annotations

import uuid

from litestar import Litestar
from litestar.testing import AsyncTestClient
from playwright.async_api import Page, Route, expect

from tests.api import test_multi_cell_geo as multi_cell
from tests.api.helpers import create_geolift_experiment
from tests.browser.conftest import (
    PHONE,
    drawn_chart,
    expect_console_errors,
    screenshots_fit_a_phone,
)

Client = AsyncTestClient[Litestar]


async def holdout_experiment_with_observations(client: Client) -> str:
    design = {
        "kind": "holdout",
        "name": "Q1 paid social and search",
        "metric": {"kind": "proportion", "baseline": 0.05},
        "channels": [{"name": "meta", "holdout_fraction": 0.1}, {"name": "search", "holdout_fraction": 0.05}],
    }
    created = await client.post("/v1/experiments", json=design)
    assert created.status_code == 201, created.text
    experiment_id: str = created.json()["id"]
    observations = [
        {"channel": "meta", "arm": "treatment", "units": 90000, "conversions": 4725, "spend": 25000},
        {"channel": "meta", "arm": "holdout", "units": 10000, "conversions": 480},
        {"channel": "search", "arm": "treatment", "units": 95000, "conversions": 4840, "spend": 12000},
        {"channel": "search", "arm": "holdout", "units": 5000, "conversions": 251},
    ]
    stored = await client.post(f"/v1/experiments/{experiment_id}/observations", json={"observations": observations})
    assert stored.status_code < 300, stored.text
    return experiment_id


async def test_a_holdout_experiment_shows_its_forest_plot_and_each_channels_decision(
    page: Page, client: Client
) -> None:
    experiment_id = await holdout_experiment_with_observations(client)
    results = (await client.get(f"/v1/experiments/{experiment_id}/results")).json()
    await page.goto(f"/app/experiment.html?id={experiment_id}")
    await expect(page.locator("#results-title")).to_have_text("Q1 paid social and search (holdout, draft)")
    await expect(page.locator("#results-chart svg")).to_be_visible()
    # The forest plot draws one point per channel, coloured by decision.
    await expect(page.locator("#results-chart svg .mark-symbol.role-mark path")).to_have_count(2)
    marks = await drawn_chart(page, "#results-chart")
    decisions = [c["decision"]["action"] for c in results["channels"]]
    assert {label: drawn["symbol"] for label, drawn in marks.per_series().items()} == {
        d: decisions.count(d) for d in decisions
    }
    assert len(marks.drawn("rule")) == 3  # each channel's interval and the line at zero
    rows = page.locator("#results-table-wrap tbody tr")
    await expect(rows).to_have_count(2)
    for row, channel in zip(await rows.all(), results["channels"], strict=True):
        await expect(row.locator("td").first).to_have_text(channel["channel"])
        await expect(row.locator(".decision")).to_have_text(channel["decision"]["action"])
        await expect(row).to_contain_text(channel["decision"]["reason"])
    assert await screenshots_fit_a_phone(page, "experiment-holdout") <= 0, f"horizontal overflow at {PHONE} px"


async def test_a_geo_experiment_shows_observed_against_counterfactual_with_its_band(page: Page, client: Client) -> None:
    experiment_id = await create_geolift_experiment(client)
    await page.goto("/app/experiment.html")
    await page.fill("#experiment-id", experiment_id)
    await page.press("#experiment-id", "Enter")
    await expect(page.locator("#results-chart svg")).to_be_visible(timeout=30_000)
    await expect(page.locator("#results-summary")).to_contain_text("counterfactual")
    marks = await drawn_chart(page, "#results-chart")
    per_series = marks.per_series()
    assert per_series["observed"]["line"] == 1 and per_series["counterfactual"]["line"] == 1
    assert per_series["90% interval"]["area"] == 1
    assert "test starts" in marks.texts()
    assert marks.titles[0] == "Backtest (synthetic_control)"
    await expect(page.locator("#results-table-wrap")).to_contain_text("Relative lift")
    # The screenshots check the chart, its backtest's title included, stays inside its box at both widths.
    assert await screenshots_fit_a_phone(page, "experiment-geo") <= 0, f"horizontal overflow at {PHONE} px"


async def test_a_multi_cell_geo_experiment_shows_each_cell_against_its_counterfactual(
    page: Page, client: Client
) -> None:
    created = await multi_cell.create(client)
    await page.goto(f"/app/experiment.html?id={created['id']}")
    await expect(page.locator("#results-title")).to_have_text("Social vs search (geo, draft)", timeout=60_000)
    marks = await drawn_chart(page, "#results-chart")
    per_series = marks.per_series()
    for series in ("social", "search", "observed", "counterfactual"):
        assert per_series[series]["line"] == 2, series
    rows = page.locator("#results-table-wrap table").first.locator("tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.first.locator("td").first).to_have_text("social")
    await expect(page.locator("#results-table-wrap")).to_contain_text("social vs search")
    assert await screenshots_fit_a_phone(page, "experiment-multi-cell") <= 0, f"horizontal overflow at {PHONE} px"


async def test_results_that_became_a_job_are_followed_to_their_chart(page: Page, client: Client, worker: None) -> None:
    experiment_id = await holdout_experiment_with_observations(client)

    async def ask_for_a_job(route: Route) -> None:  # as a long computation would answer: 202 and a job
        await route.continue_(headers={**route.request.headers, "prefer": "respond-async"})

    await page.route("**/v1/experiments/*/results", ask_for_a_job)
    await page.goto(f"/app/experiment.html?id={experiment_id}")
    await expect(page.locator("#results-chart svg")).to_be_visible(timeout=60_000)
    marks = await drawn_chart(page, "#results-chart")
    assert len(marks.drawn("symbol")) == 2  # the job's result drew each channel's estimate
    await expect(page.locator("#results-table-wrap tbody tr")).to_have_count(2)
    await expect(page.locator("#job-status")).to_contain_text("succeeded")
    await expect(page.locator("#job-progress")).to_be_hidden()


async def test_an_unknown_experiment_is_reported_not_drawn(page: Page) -> None:
    unknown = uuid.uuid4()
    expect_console_errors(page, "status of 404")  # Chromium's own line for the 404 the page asked for
    await page.goto(f"/app/experiment.html?id={unknown}")
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("(404)")
    await expect(alert).to_contain_text(str(unknown))
    await expect(page.locator("#results")).to_be_hidden()


async def test_a_holdout_experiment_page_shows_the_days_the_test_ran(page: Page, client: Client) -> None:
    experiment_id = await holdout_experiment_with_observations(client)
    stated = await client.patch(
        f"/v1/experiments/{experiment_id}", json={"actual_period": {"start": "2026-01-05", "end": "2026-01-25"}}
    )
    assert stated.status_code == 200, stated.text
    await page.goto(f"/app/experiment.html?id={experiment_id}")
    await expect(page.locator("#results-dates")).to_have_text("Ran 2026-01-05 to 2026-01-25 (21 days).")


async def test_a_holdout_experiment_page_shows_a_planned_period_as_a_plan(page: Page, client: Client) -> None:
    experiment_id = await holdout_experiment_with_observations(client)
    planned = await client.patch(
        f"/v1/experiments/{experiment_id}", json={"test_period": {"start": "2026-03-02", "end": "2026-03-29"}}
    )
    assert planned.status_code == 200, planned.text
    await page.goto(f"/app/experiment.html?id={experiment_id}")
    await expect(page.locator("#results-dates")).to_have_text(
        "Planned for 2026-03-02 to 2026-03-29 (28 days); no actual dates yet."
    )
