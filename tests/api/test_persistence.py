"""Without DATABASE_URL the service runs an embedded PostgreSQL whose data survives a restart."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from litestar.testing import AsyncTestClient

from api.app import create_app
from api.auth.keys import Scope
from api.db.embedded import start_embedded_postgres, stop_embedded_postgres
from api.settings import Settings
from testkit.database import make_key


async def test_experiments_survive_a_restart_of_the_service_on_the_embedded_database(
    settings: Settings, tmp_path: Path
) -> None:
    embedded = replace(settings, database_url=None, data_dir=tmp_path)
    body = {
        "kind": "holdout",
        "name": "kept",
        "metric": {"kind": "mean"},
        "channels": [{"name": "meta", "holdout_fraction": 0.1}],
    }
    async with AsyncTestClient(app=create_app(embedded)) as client:
        authorization = f"Bearer {await make_key(start_embedded_postgres(tmp_path), Scope.ADMIN)}"
        client.headers["Authorization"] = authorization
        created = (await client.post("/v1/experiments", json=body)).json()
    stop_embedded_postgres(tmp_path)
    assert (tmp_path / "postgres" / "PG_VERSION").exists()
    async with AsyncTestClient(app=create_app(embedded)) as client:
        client.headers["Authorization"] = authorization
        fetched = await client.get(f"/v1/experiments/{created['id']}")
    stop_embedded_postgres(tmp_path)
    assert fetched.status_code == 200
    assert fetched.json() == created
