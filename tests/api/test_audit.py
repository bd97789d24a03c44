"""The audit trail: every change to an experiment, and every results read, names the key that did it."""

from __future__ import annotations

from typing import Any

import asyncpg

from api.auth.keys import Scope
from testkit.database import make_key
from tests.api.helpers import Client, create_experiment, holdout_design

HOLDOUT = holdout_design("audited")
OBSERVATIONS = [
    {"channel": "meta", "arm": "treatment", "units": 90000, "conversions": 4725},
    {"channel": "meta", "arm": "holdout", "units": 10000, "conversions": 480},
]


async def _events(client: Client, experiment_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/experiments/{experiment_id}/events")
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _key_named(database_url: str, name: str) -> dict[str, Any]:
    connection = await asyncpg.connect(database_url)
    try:
        row = await connection.fetchrow("SELECT id, name FROM api_keys WHERE name = $1", name)
    finally:
        await connection.close()
    assert row is not None
    return {"id": str(row["id"]), "name": row["name"]}


async def test_creating_an_experiment_records_created_with_the_key_that_did_it(
    client: Client, database_url: str
) -> None:
    experiment_id = await create_experiment(client, HOLDOUT)
    [event] = await _events(client, experiment_id)
    assert event["action"] == "created"
    assert event["experiment_id"] == experiment_id
    assert event["key"] == await _key_named(database_url, "tests")
    assert event["details"] == {"kind": "holdout", "name": "audited"}


async def test_each_key_is_named_on_its_own_changes(client: Client, database_url: str) -> None:
    client.headers["Authorization"] = f"Bearer {await make_key(database_url, Scope.WRITE, name='planner')}"
    experiment_id = await create_experiment(client, HOLDOUT)
    client.headers["Authorization"] = f"Bearer {await make_key(database_url, Scope.WRITE, name='launcher')}"
    await client.patch(f"/v1/experiments/{experiment_id}", json={"status": "running"})
    events = await _events(client, experiment_id)
    assert [(e["action"], e["key"]["name"]) for e in events] == [("created", "planner"), ("status_changed", "launcher")]


async def test_a_status_change_records_from_and_to(client: Client) -> None:
    experiment_id = await create_experiment(client, HOLDOUT)
    await client.patch(f"/v1/experiments/{experiment_id}", json={"status": "running"})
    events = await _events(client, experiment_id)
    assert events[-1]["action"] == "status_changed"
    assert events[-1]["details"] == {"from": "draft", "to": "running"}


async def test_a_design_change_records_the_fields_changed(client: Client) -> None:
    experiment_id = await create_experiment(client, HOLDOUT)
    await client.patch(f"/v1/experiments/{experiment_id}", json={"alpha": 0.1, "name": "renamed"})
    events = await _events(client, experiment_id)
    assert events[-1]["action"] == "design_changed"
    assert sorted(events[-1]["details"]["fields"]) == ["alpha", "name"]


async def test_a_refused_change_records_nothing(client: Client) -> None:
    experiment_id = await create_experiment(client, HOLDOUT)
    assert (await client.patch(f"/v1/experiments/{experiment_id}", json={"status": "stopped"})).status_code == 409
    assert [e["action"] for e in await _events(client, experiment_id)] == ["created"]


async def test_assignments_loaded_as_json_and_csv_are_recorded_with_counts(client: Client) -> None:
    experiment_id = await create_experiment(client, HOLDOUT)
    await client.post(f"/v1/experiments/{experiment_id}/assignments", json={"units": ["a", "b", "a"]})
    csv = b"unit\nb\nc\nd\n"
    await client.post(f"/v1/experiments/{experiment_id}/assignments", content=csv, headers={"Content-Type": "text/csv"})
    loads = [e["details"] for e in await _events(client, experiment_id) if e["action"] == "assignments_loaded"]
    assert loads == [
        {"source": "json", "units": 2},
        {"source": "csv", "units_received": 3, "units_assigned": 2},
    ]


async def test_observations_are_recorded_with_their_unit_counts(client: Client) -> None:
    experiment_id = await create_experiment(client, HOLDOUT)
    await client.post(f"/v1/experiments/{experiment_id}/observations", json={"observations": OBSERVATIONS})
    event = (await _events(client, experiment_id))[-1]
    assert event["action"] == "observations_stored"
    assert event["details"]["arms"] == [
        {"channel": "meta", "arm": "treatment", "units": 90000},
        {"channel": "meta", "arm": "holdout", "units": 10000},
    ]


async def test_outcomes_and_spend_are_recorded_with_counts(client: Client) -> None:
    experiment_id = await create_experiment(client, HOLDOUT)
    await client.post(f"/v1/experiments/{experiment_id}/assignments", json={"units": ["a", "b"]})
    await client.post(
        f"/v1/experiments/{experiment_id}/outcomes",
        json={"outcomes": [{"unit": "a", "value": 1}, {"unit": "z", "value": 0}]},
    )
    await client.put(f"/v1/experiments/{experiment_id}/spend", json={"channels": [{"channel": "meta", "spend": 100}]})
    events = {e["action"]: e["details"] for e in await _events(client, experiment_id)}
    assert events["outcomes_stored"] == {"source": "json", "received": 2, "inserted": 2, "replaced": 0, "unassigned": 1}
    assert events["spend_stored"] == {"channels": [{"channel": "meta", "spend": 100.0}]}


async def test_reading_results_records_their_headline_figures(client: Client) -> None:
    experiment_id = await create_experiment(client, HOLDOUT)
    await client.post(f"/v1/experiments/{experiment_id}/observations", json={"observations": OBSERVATIONS})
    results = (await client.get(f"/v1/experiments/{experiment_id}/results")).json()
    event = (await _events(client, experiment_id))[-1]
    assert event["action"] == "results_read"
    channel = results["channels"][0]
    assert event["details"]["channels"] == [
        {
            "channel": "meta",
            "relative_lift": channel["lift"]["relative"],
            "p_value": channel["p_value"],
            "decision": channel["decision"]["action"],
        }
    ]


async def test_the_trail_never_holds_a_key(client: Client, database_url: str) -> None:
    secret = client.headers["Authorization"].removeprefix("Bearer ")
    experiment_id = await create_experiment(client, HOLDOUT)
    await client.patch(f"/v1/experiments/{experiment_id}", json={"status": "running"})
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch("SELECT * FROM audit_events")
    finally:
        await connection.close()
    assert rows and all(secret not in str(dict(row)) for row in rows)


async def test_events_cannot_be_changed_or_removed_through_the_api(client: Client) -> None:
    experiment_id = await create_experiment(client, HOLDOUT)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        response = await client.request(method, f"/v1/experiments/{experiment_id}/events", json={})
        assert response.status_code == 405, method


async def test_events_come_in_pages_oldest_first(client: Client) -> None:
    experiment_id = await create_experiment(client, HOLDOUT)
    await client.patch(f"/v1/experiments/{experiment_id}", json={"status": "running"})
    await client.patch(f"/v1/experiments/{experiment_id}", json={"status": "stopped"})
    first = (await client.get(f"/v1/experiments/{experiment_id}/events", params={"limit": 2})).json()
    rest = (await client.get(f"/v1/experiments/{experiment_id}/events", params={"cursor": first["next_cursor"]})).json()
    actions = [e["action"] for e in first["items"] + rest["items"]]
    assert actions == ["created", "status_changed", "status_changed"]
    assert rest["next_cursor"] is None


async def test_the_events_of_an_unknown_experiment_are_404(client: Client) -> None:
    response = await client.get("/v1/experiments/00000000-0000-4000-8000-000000000000/events")
    assert response.status_code == 404


async def test_a_cursor_that_was_not_issued_is_400(client: Client) -> None:
    experiment_id = await create_experiment(client, HOLDOUT)
    response = await client.get(f"/v1/experiments/{experiment_id}/events", params={"cursor": "abc"})
    assert response.status_code == 400


async def test_an_experiment_names_the_key_that_created_it_and_the_one_that_last_changed_it(
    client: Client, database_url: str
) -> None:
    client.headers["Authorization"] = f"Bearer {await make_key(database_url, Scope.WRITE, name='planner')}"
    created = (await client.post("/v1/experiments", json=HOLDOUT)).json()
    client.headers["Authorization"] = f"Bearer {await make_key(database_url, Scope.WRITE, name='launcher')}"
    started = (await client.patch(f"/v1/experiments/{created['id']}", json={"status": "running"})).json()
    planner, launcher = await _key_named(database_url, "planner"), await _key_named(database_url, "launcher")
    assert (created["created_by"], created["updated_by"]) == (planner["id"], planner["id"])
    assert (started["created_by"], started["updated_by"]) == (planner["id"], launcher["id"])
    assert (await client.get(f"/v1/experiments/{created['id']}")).json()["updated_by"] == launcher["id"]


GEO_CSV = "date,geo,kpi\n" + "".join(f"2026-01-{d:02d},{g},{10 + d}\n" for g in ("a", "b", "c") for d in range(1, 11))


async def test_a_geo_upload_names_its_key_and_records_created_with_counts(client: Client, database_url: str) -> None:
    client.headers["Authorization"] = f"Bearer {await make_key(database_url, Scope.WRITE, name='analyst')}"
    dataset = (
        await client.post("/v1/geo/datasets?name=panel", content=GEO_CSV, headers={"Content-Type": "text/csv"})
    ).json()
    analyst = await _key_named(database_url, "analyst")
    assert dataset["created_by"] == analyst["id"]
    [event] = (await client.get(f"/v1/geo/datasets/{dataset['id']}/events")).json()["items"]
    assert (event["action"], event["dataset_id"], event["key"]) == ("created", dataset["id"], analyst)
    assert event["details"] == {"name": "panel", "geos": 3, "dates": 10, "rows": 30}


async def test_the_events_of_a_deleted_geo_dataset_stay_readable(client: Client) -> None:
    dataset = (await client.post("/v1/geo/datasets", content=GEO_CSV, headers={"Content-Type": "text/csv"})).json()
    assert (await client.delete(f"/v1/geo/datasets/{dataset['id']}")).status_code == 200
    response = await client.get(f"/v1/geo/datasets/{dataset['id']}/events")
    assert [e["action"] for e in response.json()["items"]] == ["created", "deleted"]


async def test_the_events_of_an_unknown_geo_dataset_are_404(client: Client) -> None:
    response = await client.get("/v1/geo/datasets/00000000-0000-4000-8000-000000000000/events")
    assert response.status_code == 404
    assert response.json()["detail"] == "No geo dataset with id 00000000-0000-4000-8000-000000000000"
