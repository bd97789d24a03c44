"""Deleting an experiment or a geo dataset removes every row that belongs to it, in one transaction."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.lifecycle.repository import DeletionRepository
from tests.api.helpers import sixty_day_dataset

Client = AsyncTestClient[Litestar]
HOLDOUT = {
    "kind": "holdout",
    "name": "to delete",
    "metric": {"kind": "proportion"},
    "channels": [{"name": "meta", "holdout_fraction": 0.1}, {"name": "search", "holdout_fraction": 0.2}],
}
OBSERVATIONS = [
    {"channel": "meta", "arm": "treatment", "units": 90000, "conversions": 4725},
    {"channel": "meta", "arm": "holdout", "units": 10000, "conversions": 480},
]
MARKETS = ["austin", "boston", "chicago", "denver"]
LIFECYCLE_SQL = Path(__file__).resolve().parents[2] / "api" / "lifecycle" / "queries.sql"


async def _full_experiment(client: Client) -> str:
    """A holdout experiment with something in every table an experiment owns."""
    experiment_id: str = (await client.post("/v1/experiments", json=HOLDOUT)).json()["id"]
    path = f"/v1/experiments/{experiment_id}"
    await client.post(f"{path}/assignments", json={"units": ["u1", "u2", "u3"]})
    await client.post(f"{path}/outcomes", json={"outcomes": [{"unit": "u1", "value": 1}, {"unit": "u2", "value": 0}]})
    await client.put(f"{path}/spend", json={"channels": [{"channel": "meta", "spend": 100}]})
    await client.get(f"{path}/results", params={"sequential": "true"})
    await client.get(f"{path}/results", headers={"Prefer": "respond-async"})
    return experiment_id


async def _rows_of(database_url: str, column: str, value: str) -> dict[str, int]:
    """Rows per table whose ``column`` is ``value``, over every table that has that column."""
    connection = await asyncpg.connect(database_url)
    try:
        tables = await connection.fetch(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' AND column_name = $1",
            column,
        )
        return {
            t["table_name"]: await connection.fetchval(
                f'SELECT count(*) FROM "{t["table_name"]}" WHERE {column} = $1', uuid.UUID(value)
            )
            for t in tables
        }
    finally:
        await connection.close()


async def _count(database_url: str, sql: str, *args: Any) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        return int(await connection.fetchval(sql, *args))
    finally:
        await connection.close()


async def _dataset(client: Client) -> str:
    return await sixty_day_dataset(client, MARKETS, "four markets")


async def _geo_experiment(client: Client, dataset_id: str, status: str) -> str:
    body = {
        "kind": "geo",
        "name": f"{status} geo test",
        "dataset_id": dataset_id,
        "channel": "tv",
        "treatment_markets": ["austin"],
        "pre_period": {"start": "2026-01-01", "end": "2026-01-31"},
        "test_period": {"start": "2026-02-01", "end": "2026-02-14"},
    }
    experiment_id = str((await client.post("/v1/experiments", json=body)).json()["id"])
    for step in {"draft": [], "running": ["running"], "stopped": ["running", "stopped"]}[status]:
        await client.patch(f"/v1/experiments/{experiment_id}", json={"status": step})
    return experiment_id


def test_every_table_with_an_experiment_or_dataset_id_is_named_by_the_deletion_queries() -> None:
    named = set(re.findall(r"DELETE FROM (\w+)", LIFECYCLE_SQL.read_text()))
    migrations = (Path(__file__).resolve().parents[2] / "sql").glob("*.sql")
    owned = {
        table
        for path in migrations
        for table, body in re.findall(r"CREATE TABLE (\w+) \((.*?)\n\);", path.read_text(), re.S)
        if re.search(r"^\s+(experiment_id|dataset_id)\s", body, re.M) or "LIKE holdout_observations" in body
    }
    assert {"assignments", "holdout_outcomes", "geo_observations"} <= owned
    assert owned - {"audit_events"} <= named


async def test_deleting_an_experiment_removes_every_row_that_belongs_to_it(client: Client, database_url: str) -> None:
    experiment_id = await _full_experiment(client)
    before = await _rows_of(database_url, "experiment_id", experiment_id)
    assert before["assignments"] and before["holdout_outcomes"] and before["channel_spend"]
    response = await client.delete(f"/v1/experiments/{experiment_id}")
    assert response.status_code == 200
    after = await _rows_of(database_url, "experiment_id", experiment_id)
    assert {table: n for table, n in after.items() if n} == {}
    assert await _count(database_url, "SELECT count(*) FROM experiments WHERE id = $1", uuid.UUID(experiment_id)) == 0
    jobs = await _count(database_url, "SELECT count(*) FROM jobs WHERE subject LIKE '%' || $1 || '%'", experiment_id)
    assert jobs == 0
    assert (await client.get(f"/v1/experiments/{experiment_id}")).status_code == 404


async def test_the_answer_counts_the_rows_removed_per_table(client: Client) -> None:
    experiment_id = await _full_experiment(client)
    deletion = (await client.delete(f"/v1/experiments/{experiment_id}")).json()
    assert deletion["kind"] == "experiment" and deletion["name"] == "to delete"
    assert deletion["rows_deleted"]["assignments"] == 3 * 2
    assert deletion["rows_deleted"]["holdout_outcomes"] == 2
    assert deletion["rows_deleted"]["experiment_channels"] == 2
    assert deletion["rows_deleted"]["experiments"] == 1
    assert deletion["rows_deleted"]["jobs"] >= 1


async def test_other_experiments_keep_their_rows(client: Client, database_url: str) -> None:
    kept = await _full_experiment(client)
    before = await _rows_of(database_url, "experiment_id", kept)
    await client.delete(f"/v1/experiments/{await _full_experiment(client)}")
    assert await _rows_of(database_url, "experiment_id", kept) == before


async def test_a_running_experiment_is_refused_409_naming_it_and_nothing_is_deleted(
    client: Client, database_url: str
) -> None:
    experiment_id = await _full_experiment(client)
    await client.patch(f"/v1/experiments/{experiment_id}", json={"status": "running"})
    before = await _rows_of(database_url, "experiment_id", experiment_id)
    response = await client.delete(f"/v1/experiments/{experiment_id}")
    assert response.status_code == 409
    assert experiment_id in response.json()["detail"] and "running" in response.json()["detail"]
    assert await _rows_of(database_url, "experiment_id", experiment_id) == before


async def test_a_stopped_experiment_can_be_deleted(client: Client) -> None:
    experiment_id = await _full_experiment(client)
    for status in ("running", "stopped"):
        await client.patch(f"/v1/experiments/{experiment_id}", json={"status": status})
    assert (await client.delete(f"/v1/experiments/{experiment_id}")).status_code == 200


async def test_the_deletion_leaves_one_deleted_event_after_the_experiments_trail(client: Client) -> None:
    experiment_id = await _full_experiment(client)
    await client.delete(f"/v1/experiments/{experiment_id}")
    events = (await client.get(f"/v1/experiments/{experiment_id}/events")).json()["items"]
    assert events[0]["action"] == "created"
    assert [e["action"] for e in events].count("deleted") == 1
    assert events[-1]["action"] == "deleted"
    assert events[-1]["details"]["rows_deleted"]["assignments"] == 6
    assert events[-1]["key"]["name"] == "tests"


async def test_a_deletion_that_fails_half_way_deletes_nothing(
    client: Client, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    experiment_id = await _full_experiment(client)
    before = await _rows_of(database_url, "experiment_id", experiment_id)
    original = DeletionRepository.delete_experiment

    async def fail_after_deleting(self: DeletionRepository, experiment: uuid.UUID) -> dict[str, int]:
        await original(self, experiment)
        raise ConnectionResetError("lost the database half-way")

    monkeypatch.setattr(DeletionRepository, "delete_experiment", fail_after_deleting)
    assert (await client.delete(f"/v1/experiments/{experiment_id}")).status_code >= 500
    assert await _rows_of(database_url, "experiment_id", experiment_id) == before


async def test_deleting_an_unknown_experiment_is_404(client: Client) -> None:
    assert (await client.delete(f"/v1/experiments/{uuid.uuid4()}")).status_code == 404


async def test_deleting_a_geo_dataset_removes_its_panel(client: Client, database_url: str) -> None:
    dataset_id = await _dataset(client)
    assert (await _rows_of(database_url, "dataset_id", dataset_id))["geo_observations"] == 4 * 60
    response = await client.delete(f"/v1/geo/datasets/{dataset_id}")
    assert response.status_code == 200
    assert response.json()["rows_deleted"] == {
        "geo_observations": 240,
        "kept_answers": 0,
        "geo_dataset_versions": 1,
        "jobs": 0,
        "geo_market_selections": 0,
        "geo_matched_pair_designs": 0,
        "geo_datasets": 1,
    }
    assert set((await _rows_of(database_url, "dataset_id", dataset_id)).values()) == {0}
    assert (await client.get(f"/v1/geo/datasets/{dataset_id}")).status_code == 404


async def test_a_geo_dataset_read_by_a_running_experiment_is_refused_409_naming_it(client: Client) -> None:
    dataset_id = await _dataset(client)
    experiment_id = await _geo_experiment(client, dataset_id, "running")
    response = await client.delete(f"/v1/geo/datasets/{dataset_id}")
    assert response.status_code == 409
    assert experiment_id in response.json()["detail"]
    assert (await client.get(f"/v1/geo/datasets/{dataset_id}")).status_code == 200


async def test_experiments_left_on_a_deleted_dataset_are_named(client: Client) -> None:
    dataset_id = await _dataset(client)
    stopped = await _geo_experiment(client, dataset_id, "stopped")
    response = await client.delete(f"/v1/geo/datasets/{dataset_id}")
    assert response.status_code == 200
    assert response.json()["experiments_left"] == [stopped]


async def test_a_dataset_deletion_leaves_one_audit_event(client: Client, database_url: str) -> None:
    dataset_id = await _dataset(client)
    await client.delete(f"/v1/geo/datasets/{dataset_id}")
    count = await _count(
        database_url,
        "SELECT count(*) FROM audit_events"
        " WHERE subject_kind = 'geo_dataset' AND subject_id = $1 AND action = 'deleted'",
        uuid.UUID(dataset_id),
    )
    assert count == 1
