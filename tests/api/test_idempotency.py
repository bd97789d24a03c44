"""``Idempotency-Key`` on the POSTs that load data: a retry gets the first answer and nothing runs twice."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.auth.guard import required_scope
from api.auth.keys import Scope
from api.auth.service import create_key
from api.cli import openapi_document
from api.idempotency.middleware import IDEMPOTENT_OPERATIONS
from api.settings import Settings
from testkit.database import make_key
from testkit.panels import pretest_csv
from tests.api.helpers import Client, create_experiment, holdout_design

HOLDOUT = holdout_design("idempotent")
CSV = {"Content-Type": "text/csv"}


async def _events(client: Client, experiment_id: str, action: str) -> list[dict[str, Any]]:
    items = (await client.get(f"/v1/experiments/{experiment_id}/events")).json()["items"]
    return [e for e in items if e["action"] == action]


async def test_a_retry_with_the_same_key_and_body_gets_the_first_answer_and_runs_once(client: Client) -> None:
    experiment_id = await create_experiment(client, HOLDOUT)
    path = f"/v1/experiments/{experiment_id}/assignments"
    once = {"Idempotency-Key": "load-1", **CSV}
    first = await client.post(path, content=b"unit\nu1\nu2\n", headers=once)
    retry = await client.post(path, content=b"unit\nu1\nu2\n", headers=once)
    assert first.status_code == retry.status_code == 200
    assert retry.content == first.content
    assert retry.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert len(await _events(client, experiment_id, "assignments_loaded")) == 1


async def test_the_same_key_with_another_body_is_422_naming_the_header(client: Client) -> None:
    experiment_id = await create_experiment(client, HOLDOUT)
    path = f"/v1/experiments/{experiment_id}/assignments"
    await client.post(path, json={"units": ["a"]}, headers={"Idempotency-Key": "k"})
    response = await client.post(path, json={"units": ["b"]}, headers={"Idempotency-Key": "k"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["invalid_params"][0]["name"] == "Idempotency-Key"


async def test_a_retried_dataset_upload_is_stored_once(client: Client, database_url: str) -> None:
    body = "date,geo,kpi\n" + "".join(f"2026-01-{d:02d},{g},{10 + d}\n" for g in ("a", "b") for d in range(1, 29))
    headers = {"Idempotency-Key": "panel-upload", **CSV}
    first = await client.post("/v1/geo/datasets", content=body, headers=headers)
    retry = await client.post("/v1/geo/datasets", content=body, headers=headers)
    assert first.status_code == retry.status_code == 201
    assert retry.json()["id"] == first.json()["id"]
    assert retry.headers["location"] == first.headers["location"]
    connection = await asyncpg.connect(database_url)
    try:
        assert await connection.fetchval("SELECT count(*) FROM geo_datasets") == 1
    finally:
        await connection.close()


async def test_a_failed_first_request_leaves_the_key_free(client: Client) -> None:
    experiment_id = await create_experiment(client, HOLDOUT)
    path = f"/v1/experiments/{experiment_id}/outcomes"
    headers = {"Idempotency-Key": "outcomes-1"}
    assert (
        await client.post(path, json={"outcomes": [{"unit": "u", "value": "x"}]}, headers=headers)
    ).status_code == 400
    fixed = await client.post(path, json={"outcomes": [{"unit": "u", "value": 1}]}, headers=headers)
    assert fixed.status_code == 200


async def test_keys_belong_to_the_api_key_that_sent_them(client: Client, database_url: str) -> None:
    experiment_id = await create_experiment(client, HOLDOUT)
    path = f"/v1/experiments/{experiment_id}/assignments"
    await client.post(path, json={"units": ["a"]}, headers={"Idempotency-Key": "shared"})
    client.headers["Authorization"] = f"Bearer {await make_key(database_url, Scope.WRITE, name='other team')}"
    other = await client.post(path, json={"units": ["b"]}, headers={"Idempotency-Key": "shared"})
    assert other.status_code == 200
    assert "idempotent-replayed" not in other.headers


async def test_an_experiments_key_belongs_to_the_api_key_that_sent_it(client: Client, database_url: str) -> None:
    once = {"Idempotency-Key": "q1-test"}
    mine = await client.post("/v1/experiments", json=HOLDOUT, headers=once)
    client.headers["Authorization"] = f"Bearer {await make_key(database_url, Scope.WRITE, name='other team')}"
    theirs = await client.post("/v1/experiments", json={**HOLDOUT, "name": "theirs"}, headers=once)
    their_retry = await client.post("/v1/experiments", json={**HOLDOUT, "name": "theirs"}, headers=once)
    assert (mine.status_code, theirs.status_code, their_retry.status_code) == (201, 201, 200)
    assert theirs.json()["id"] != mine.json()["id"]
    assert their_retry.json()["id"] == theirs.json()["id"]


@pytest.mark.parametrize(("hours", "replayed"), [(23, True), (25, False)])
async def test_answers_are_kept_24_hours(client: Client, database_url: str, hours: int, replayed: bool) -> None:
    experiment_id = await create_experiment(client, HOLDOUT)
    path = f"/v1/experiments/{experiment_id}/observations"
    body = {"observations": [{"channel": "meta", "arm": "holdout", "units": 10, "conversions": 1}]}
    await client.post(path, json=body, headers={"Idempotency-Key": "obs"})
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            "UPDATE idempotent_requests SET created_at = now() - make_interval(hours => $1)", hours
        )
    finally:
        await connection.close()
    retry = await client.post(path, json=body, headers={"Idempotency-Key": "obs"})
    assert retry.status_code == 200
    assert ("idempotent-replayed" in retry.headers) is replayed


async def test_a_request_without_the_header_is_not_remembered(client: Client, database_url: str) -> None:
    experiment_id = await create_experiment(client, HOLDOUT)
    await client.post(f"/v1/experiments/{experiment_id}/assignments", json={"units": ["a"]})
    connection = await asyncpg.connect(database_url)
    try:
        assert await connection.fetchval("SELECT count(*) FROM idempotent_requests") == 0
    finally:
        await connection.close()


def _write_posts() -> set[str]:
    """Every POST of the app that needs more than the read scope: those that create or load data."""
    app = create_app()
    return {
        handler.operation_id
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for handler in route.route_handlers
        if "POST" in handler.http_methods
        and required_scope(handler, "POST") is not Scope.READ
        and isinstance(handler.operation_id, str)
    }


def test_every_post_that_creates_or_loads_data_documents_the_header_and_422() -> None:
    document = openapi_document()
    documented = {}
    for item in document["paths"].values():  # type: ignore[attr-defined]
        for method, operation in item.items():
            names = {parameter.get("name") for parameter in operation.get("parameters", [])}  # $refs: no name
            if method == "post" and "Idempotency-Key" in names:
                documented[operation["operationId"]] = set(operation["responses"])
    assert set(documented) == _write_posts()
    assert all("422" in responses for responses in documented.values())
    assert all("409" in documented[operation] for operation in IDEMPOTENT_OPERATIONS)


async def test_a_retried_market_selection_is_one_job(client: Client) -> None:
    dataset = await client.post("/v1/geo/datasets", content=pretest_csv(), headers=CSV)
    body = {"dataset_id": dataset.json()["id"], "treatment_sizes": [2], "durations": [10], "effect_sizes": [0, 0.1]}
    once = {"Idempotency-Key": "selection-1"}
    first = await client.post("/v1/geo/market-selection", json=body, headers=once)
    retry = await client.post("/v1/geo/market-selection", json=body, headers=once)
    other = await client.post("/v1/geo/market-selection", json={**body, "durations": [15]}, headers=once)
    assert (first.status_code, retry.status_code, other.status_code) == (202, 202, 422)
    assert retry.json()["id"] == first.json()["id"]
    assert retry.headers["location"] == first.headers["location"]


async def test_a_request_with_a_key_but_no_api_key_is_401_and_remembers_nothing(
    client: Client, database_url: str
) -> None:
    experiment_id = await create_experiment(client, HOLDOUT)
    del client.headers["Authorization"]
    path = f"/v1/experiments/{experiment_id}/assignments"
    response = await client.post(path, json={"units": ["a"]}, headers={"Idempotency-Key": "anon"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    connection = await asyncpg.connect(database_url)
    try:
        assert await connection.fetchval("SELECT count(*) FROM idempotent_requests") == 0
    finally:
        await connection.close()


async def test_a_revoked_key_gets_no_replay(settings: Settings, database_url: str) -> None:
    async with AsyncTestClient(app=create_app(replace(settings, api_key_cache_seconds=0))) as client:
        connection = await asyncpg.connect(database_url)
        try:
            made = await create_key(connection, name="to revoke", scope=Scope.WRITE)
            client.headers["Authorization"] = f"Bearer {made.secret}"
            experiment_id = await create_experiment(client, HOLDOUT)
            path = f"/v1/experiments/{experiment_id}/assignments"
            once = {"Idempotency-Key": "before-revocation"}
            assert (await client.post(path, json={"units": ["a"]}, headers=once)).status_code == 200
            await connection.execute("UPDATE api_keys SET revoked_at = now() WHERE id = $1", made.key.id)
        finally:
            await connection.close()
        assert (await client.post(path, json={"units": ["a"]}, headers=once)).status_code == 401


async def test_an_idempotent_request_counts_once_against_the_rate_limit(settings: Settings, database_url: str) -> None:
    async with AsyncTestClient(app=create_app(replace(settings, rate_limit_write_per_minute=3))) as client:
        client.headers["Authorization"] = f"Bearer {await make_key(database_url, Scope.WRITE)}"
        experiment_id = await create_experiment(client, HOLDOUT)
        path = f"/v1/experiments/{experiment_id}/assignments"
        loaded = await client.post(path, json={"units": ["a"]}, headers={"Idempotency-Key": "once"})
        read = await client.get(f"/v1/experiments/{experiment_id}")
    assert (loaded.status_code, read.status_code) == (200, 200)


# --- scoped to the request (issue 22): method, path and query as well as the body -----------------------


async def test_the_same_key_and_body_sent_to_another_experiment_is_422_and_loads_nothing_there(
    client: Client,
) -> None:
    first, second = await create_experiment(client, HOLDOUT), await create_experiment(client, HOLDOUT)
    once = {"Idempotency-Key": "load-a", **CSV}
    loaded = await client.post(f"/v1/experiments/{first}/assignments", content=b"unit\nu1\n", headers=once)
    elsewhere = await client.post(f"/v1/experiments/{second}/assignments", content=b"unit\nu1\n", headers=once)
    assert (loaded.status_code, elsewhere.status_code) == (200, 422)
    assert elsewhere.json()["invalid_params"][0]["name"] == "Idempotency-Key"
    summary = (await client.get(f"/v1/experiments/{second}/assignments/summary")).json()
    assert [channel["units"] for channel in summary["channels"]] == [0]


async def test_the_same_key_and_body_with_another_query_is_422(client: Client) -> None:
    body = "date,geo,kpi\n" + "".join(f"2026-01-{d:02d},{g},{10 + d}\n" for g in ("a", "b") for d in range(1, 29))
    once = {"Idempotency-Key": "named-panel", **CSV}
    first = await client.post("/v1/geo/datasets?name=north", content=body, headers=once)
    renamed = await client.post("/v1/geo/datasets?name=south", content=body, headers=once)
    same = await client.post("/v1/geo/datasets?name=north", content=body, headers=once)
    assert (first.status_code, renamed.status_code, same.status_code) == (201, 422, 201)
    assert same.headers["idempotent-replayed"] == "true"
    assert same.json() == first.json()


async def test_a_deleted_datasets_upload_resent_with_its_key_creates_a_new_dataset(client: Client) -> None:
    body = "date,geo,kpi\n" + "".join(f"2026-01-{d:02d},{g},{10 + d}\n" for g in ("a", "b") for d in range(1, 29))
    once = {"Idempotency-Key": "panel-to-delete", **CSV}
    first = (await client.post("/v1/geo/datasets", content=body, headers=once)).json()
    assert (await client.delete(f"/v1/geo/datasets/{first['id']}")).status_code == 200
    again = await client.post("/v1/geo/datasets", content=body, headers=once)
    assert again.status_code == 201
    assert "idempotent-replayed" not in again.headers
    assert again.json()["id"] != first["id"]
    assert (await client.get(f"/v1/geo/datasets/{again.json()['id']}")).status_code == 200


async def test_a_deleted_experiments_stored_replies_are_deleted_with_it(client: Client, database_url: str) -> None:
    kept, deleted = await create_experiment(client, HOLDOUT), await create_experiment(client, HOLDOUT)
    await client.post(f"/v1/experiments/{kept}/assignments", json={"units": ["a"]}, headers={"Idempotency-Key": "k"})
    path = f"/v1/experiments/{deleted}/assignments"
    await client.post(path, json={"units": ["a"]}, headers={"Idempotency-Key": "d"})
    assert (await client.delete(f"/v1/experiments/{deleted}")).status_code == 200
    connection = await asyncpg.connect(database_url)
    try:
        paths = await connection.fetch("SELECT path FROM idempotent_requests")
    finally:
        await connection.close()
    assert [row["path"] for row in paths] == [f"/v1/experiments/{kept}/assignments"]
    assert (await client.post(path, json={"units": ["a"]}, headers={"Idempotency-Key": "d"})).status_code == 404


async def test_a_deleted_datasets_design_job_replies_are_deleted_with_it(
    client: Client, database_url: str, worker: None
) -> None:
    dataset = (await client.post("/v1/geo/datasets", content=pretest_csv(), headers=CSV)).json()["id"]
    body = {"dataset_id": dataset, "treatment_sizes": [2], "durations": [10], "effect_sizes": [0, 0.1]}
    once = {"Idempotency-Key": "selection-to-delete", "Prefer": "respond-async"}
    job = await client.post("/v1/geo/market-selection", json=body, headers=once)
    assert job.status_code == 202
    for _ in range(600):
        status = (await client.get(job.headers["location"])).json()["status"]
        if status not in ("queued", "running"):
            break
        await asyncio.sleep(0.5)
    assert status == "succeeded"
    assert (await client.delete(f"/v1/geo/datasets/{dataset}")).status_code == 200
    connection = await asyncpg.connect(database_url)
    try:
        assert await connection.fetchval("SELECT count(*) FROM idempotent_requests") == 0
    finally:
        await connection.close()


async def test_a_key_that_created_an_experiment_is_422_on_an_upload_and_the_other_way_round(client: Client) -> None:
    created = await client.post("/v1/experiments", json=HOLDOUT, headers={"Idempotency-Key": "made-it"})
    path = f"/v1/experiments/{created.json()['id']}/assignments"
    upload = await client.post(path, json={"units": ["a"]}, headers={"Idempotency-Key": "made-it"})
    assert (created.status_code, upload.status_code) == (201, 422)
    loaded = await client.post(path, json={"units": ["a"]}, headers={"Idempotency-Key": "loaded-it"})
    another = await client.post("/v1/experiments", json=HOLDOUT, headers={"Idempotency-Key": "loaded-it"})
    assert (loaded.status_code, another.status_code) == (200, 422)
    assert another.json()["invalid_params"][0]["name"] == "Idempotency-Key"
    assert len((await client.get("/v1/experiments")).json()["items"]) == 1
