"""A holdout test's dates: the plan (`test_period`), the days it ran (`actual_period`), and the dates its
results use (actual, else planned)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.api.helpers import unspent_geolift_design
from tests.api.test_experiments import holdout_body, small_dataset

Client = AsyncTestClient[Litestar]
PLAN = {"start": "2026-03-02", "end": "2026-03-29"}


def utc_date(timestamp: str) -> str:
    """The UTC calendar date of an ISO timestamp the API answered."""
    return datetime.fromisoformat(timestamp).astimezone(UTC).date().isoformat()


async def create(client: Client, **fields: Any) -> dict[str, Any]:
    response = await client.post("/v1/experiments", json=holdout_body(**fields))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def patch(client: Client, experiment_id: str, **fields: Any) -> dict[str, Any]:
    response = await client.patch(f"/v1/experiments/{experiment_id}", json=fields)
    assert response.status_code == 200, response.text
    patched: dict[str, Any] = response.json()
    return patched


async def test_a_planned_test_period_is_stored_and_used_until_the_test_runs(client: Client) -> None:
    created = await create(client, test_period=PLAN)
    assert created["test_period"] == PLAN
    assert created["actual_period"] is None
    assert created["test_dates"] == {**PLAN, "basis": "planned"}


async def test_running_sets_the_actual_start_and_stopping_the_actual_end(client: Client) -> None:
    created = await create(client, test_period=PLAN)
    running = await patch(client, created["id"], status="running")
    started = utc_date(running["started_at"])
    assert running["actual_period"] == {"start": started, "end": None}
    assert running["test_dates"]["start"] == started and running["test_dates"]["basis"] == "so_far"
    stopped = await patch(client, created["id"], status="stopped")
    assert stopped["actual_period"] == {"start": started, "end": utc_date(stopped["stopped_at"])}
    assert stopped["test_dates"]["basis"] == "actual"
    assert stopped["test_period"] == PLAN


async def test_stated_dates_survive_the_status_changes(client: Client) -> None:
    """A test imported after it ran keeps the days it ran when it is moved through running and stopped."""
    stated = {"start": "2026-01-05", "end": "2026-01-25"}
    created = await create(client, actual_period=stated)
    assert created["status"] == "draft" and created["actual_period"] == stated
    await patch(client, created["id"], status="running")
    stopped = await patch(client, created["id"], status="stopped")
    assert stopped["actual_period"] == stated
    assert stopped["test_dates"] == {**stated, "basis": "actual"}


async def test_actual_dates_can_be_stated_in_any_status(client: Client) -> None:
    created = await create(client)
    await patch(client, created["id"], status="running")
    await patch(client, created["id"], status="stopped")
    stated = {"start": "2025-11-03", "end": "2025-11-30"}
    corrected = await patch(client, created["id"], actual_period=stated)
    assert corrected["actual_period"] == stated
    events = (await client.get(f"/v1/experiments/{created['id']}/events")).json()["items"]
    assert any(e["action"] == "design_changed" and e["details"]["fields"] == ["actual_period"] for e in events)


async def test_the_plan_is_frozen_once_the_test_runs(client: Client) -> None:
    created = await create(client, test_period=PLAN)
    await patch(client, created["id"], status="running")
    response = await client.patch(f"/v1/experiments/{created['id']}", json={"test_period": PLAN})
    assert response.status_code == 409
    assert response.json()["invalid_params"][0]["name"] == "test_period"


async def test_holdout_results_state_the_dates_they_cover(client: Client) -> None:
    created = await create(client, actual_period={"start": "2026-01-05", "end": "2026-01-25"})
    observations = [
        {"channel": "meta", "arm": "treatment", "units": 9000, "conversions": 470},
        {"channel": "meta", "arm": "holdout", "units": 1000, "conversions": 45},
        {"channel": "search", "arm": "treatment", "units": 9500, "conversions": 480},
        {"channel": "search", "arm": "holdout", "units": 500, "conversions": 24},
    ]
    stored = await client.post(f"/v1/experiments/{created['id']}/observations", json={"observations": observations})
    assert stored.status_code == 200, stored.text
    results = (await client.get(f"/v1/experiments/{created['id']}/results")).json()
    assert results["test_dates"] == {"start": "2026-01-05", "end": "2026-01-25", "basis": "actual"}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"test_period": {"start": "2026-03-29", "end": "2026-03-02"}}, "test_period.end"),
        ({"actual_period": {"start": "2026-03-29", "end": "2026-03-02"}}, "actual_period.end"),
        ({"actual_period": {"start": "2999-01-01"}}, "actual_period.start"),
        ({"actual_period": {"start": "2026-01-01", "end": "2999-01-01"}}, "actual_period.end"),
    ],
)
async def test_bad_dates_are_400_naming_the_field(client: Client, fields: dict[str, Any], field: str) -> None:
    response = await client.post("/v1/experiments", json=holdout_body(**fields))
    assert response.status_code == 400
    assert [p["name"] for p in response.json()["invalid_params"]] == [field]


async def test_bad_dates_in_a_patch_change_nothing(client: Client) -> None:
    created = await create(client, test_period=PLAN)
    response = await client.patch(
        f"/v1/experiments/{created['id']}", json={"actual_period": {"start": "2026-02-10", "end": "2026-02-01"}}
    )
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "actual_period.end"
    assert (await client.get(f"/v1/experiments/{created['id']}")).json() == created


async def test_a_stopped_test_needs_an_end_to_its_stated_dates(client: Client) -> None:
    created = await create(client)
    await patch(client, created["id"], status="running")
    await patch(client, created["id"], status="stopped")
    response = await client.patch(f"/v1/experiments/{created['id']}", json={"actual_period": {"start": "2026-01-01"}})
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "actual_period.end"


async def test_tomorrow_is_a_day_a_test_can_have_started_in_some_time_zone(client: Client) -> None:
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    created = await create(client, actual_period={"start": tomorrow})
    assert created["actual_period"] == {"start": tomorrow, "end": None}


async def test_a_geo_experiment_has_no_actual_period_to_state(client: Client) -> None:
    dataset_id = await small_dataset(client)
    created = (await client.post("/v1/experiments", json=unspent_geolift_design(dataset_id))).json()
    response = await client.patch(f"/v1/experiments/{created['id']}", json={"actual_period": {"start": "2021-04-01"}})
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "actual_period"
