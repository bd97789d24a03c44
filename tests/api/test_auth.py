"""API keys: a bearer key on every /v1 call, refused with 401 or 403 problem+json, stored only as a hash."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.auth.keys import Scope, generate_key, hash_key, highest_scope
from api.auth.service import create_key
from api.settings import Settings
from testkit.database import make_key

Client = AsyncTestClient[Litestar]
HOLDOUT = {
    "kind": "holdout",
    "name": "auth",
    "metric": {"kind": "proportion", "baseline": 0.05},
    "channels": [{"name": "meta", "holdout_fraction": 0.1}],
}
POWER = {"metric": {"kind": "proportion", "baseline": 0.05}, "mde": {"relative": 0.1}, "solve_for": "sample_size"}


def _use(client: Client, key: str) -> None:
    client.headers["Authorization"] = f"Bearer {key}"


def _assert_unauthorized(response: object) -> None:
    assert getattr(response, "status_code") == 401  # noqa: B009
    headers = getattr(response, "headers")  # noqa: B009
    assert headers["content-type"].startswith("application/problem+json")
    assert headers["www-authenticate"].startswith("Bearer")


async def test_a_v1_call_without_a_key_is_401_problem_json_with_a_bearer_challenge(client: Client) -> None:
    del client.headers["Authorization"]
    response = await client.get("/v1/experiments")
    _assert_unauthorized(response)
    assert response.json()["status"] == 401
    assert "Authorization: Bearer" in response.json()["detail"]


async def test_an_unknown_key_is_401(client: Client) -> None:
    _use(client, generate_key())
    _assert_unauthorized(await client.get("/v1/experiments"))


async def test_another_authorization_scheme_is_401(client: Client) -> None:
    client.headers["Authorization"] = "Basic dXNlcjpwYXNz"
    _assert_unauthorized(await client.get("/v1/experiments"))


async def test_the_bearer_scheme_name_is_case_insensitive(client: Client) -> None:
    client.headers["Authorization"] = client.headers["Authorization"].replace("Bearer", "bearer")
    assert (await client.get("/v1/experiments")).status_code == 200


async def test_an_expired_key_is_401(client: Client, database_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        made = await create_key(connection, name="short-lived", scope=Scope.ADMIN, expires_in_days=1)
        await connection.execute(
            "UPDATE api_keys SET expires_at = $2 WHERE id = $1", made.key.id, datetime.now(UTC) - timedelta(seconds=1)
        )
    finally:
        await connection.close()
    _use(client, made.secret)
    response = await client.get("/v1/experiments")
    _assert_unauthorized(response)
    assert "expired" in response.json()["detail"]


async def test_a_revoked_key_is_401_once_the_cache_has_passed(settings: Settings, database_url: str) -> None:
    app = create_app(replace(settings, api_key_cache_seconds=0))
    async with AsyncTestClient(app=app) as client:
        connection = await asyncpg.connect(database_url)
        try:
            made = await create_key(connection, name="soon revoked", scope=Scope.READ)
            _use(client, made.secret)
            assert (await client.get("/v1/experiments")).status_code == 200
            await connection.execute("UPDATE api_keys SET revoked_at = now() WHERE id = $1", made.key.id)
        finally:
            await connection.close()
        response = await client.get("/v1/experiments")
    _assert_unauthorized(response)
    assert "revoked" in response.json()["detail"]


async def test_a_read_key_reads_but_cannot_write_403(client: Client, database_url: str) -> None:
    _use(client, await make_key(database_url, Scope.READ))
    assert (await client.get("/v1/experiments")).status_code == 200
    response = await client.post("/v1/experiments", json=HOLDOUT)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"] == "This operation needs the `write` scope; the key has `read`."


async def test_a_read_key_may_run_a_power_calculation(client: Client, database_url: str) -> None:
    _use(client, await make_key(database_url, Scope.READ))
    assert (await client.post("/v1/power/holdout", json=POWER)).status_code == 200


async def test_a_write_key_may_create_an_experiment(client: Client, database_url: str) -> None:
    _use(client, await make_key(database_url, Scope.WRITE))
    assert (await client.post("/v1/experiments", json=HOLDOUT)).status_code == 201


async def test_health_and_the_schema_need_no_key(client: Client) -> None:
    del client.headers["Authorization"]
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/schema/openapi.json")).status_code == 200


async def test_a_refused_key_is_logged_without_the_key(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    secret = generate_key()
    _use(client, secret)
    logger = logging.getLogger("counterfact.auth")
    logger.addHandler(caplog.handler)
    try:
        await client.get("/v1/experiments")
    finally:
        logger.removeHandler(caplog.handler)
    refusals = [r for r in caplog.records if r.name == "counterfact.auth"]
    assert refusals and refusals[0].reason == "unknown"  # type: ignore[attr-defined]
    assert all(secret not in str(r.__dict__) for r in caplog.records)


async def test_a_key_is_stored_only_as_its_sha256_hash(database_url: str, client: Client) -> None:
    secret = await make_key(database_url, Scope.READ, name="hashed")
    connection = await asyncpg.connect(database_url)
    try:
        row = await connection.fetchrow("SELECT * FROM api_keys WHERE name = 'hashed'")
    finally:
        await connection.close()
    assert row is not None
    assert bytes(row["key_hash"]) == hash_key(secret)
    assert all(secret not in str(value) for value in dict(row).values())


def test_a_key_carries_256_random_bits_behind_its_prefix() -> None:
    keys = {generate_key() for _ in range(100)}
    assert len(keys) == 100
    assert all(key.startswith("cf_") and len(key) == 3 + 43 for key in keys)


def test_a_list_of_scopes_grants_the_highest_and_admin_implies_write_and_read() -> None:
    assert highest_scope(["read", "write"]) is Scope.WRITE
    assert Scope.ADMIN.implied() == ["read", "write", "admin"]
    assert Scope.ADMIN.grants(Scope.WRITE) and Scope.WRITE.grants(Scope.READ)
    assert not Scope.READ.grants(Scope.WRITE)


def test_an_unknown_scope_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown scope"):
        highest_scope(["owner"])
