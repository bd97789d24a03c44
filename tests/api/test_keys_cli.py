"""``counterfact keys create|list|revoke`` and the first admin key ``counterfact serve`` prints once."""

from __future__ import annotations

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.auth.cli import announce_first_admin_key
from api.cli import main
from api.settings import get_settings

Client = AsyncTestClient[Litestar]


@pytest.fixture
def cli_database(client: Client, database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test database as the CLI's ``DATABASE_URL`` (migrated, tables empty)."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    return database_url


def _run(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as exit:
        return int(exit.code or 0)
    return 0


async def _run_async(argv: list[str]) -> int:
    import asyncio

    return await asyncio.to_thread(_run, argv)


async def test_keys_create_prints_the_new_key_alone_on_stdout_and_it_works(
    cli_database: str, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _run_async(["keys", "create", "--name", "ci", "--scopes", "read,write"]) == 0
    out = capsys.readouterr().out
    key = out.strip()
    assert out == key + "\n" and key.startswith("cf_")
    client.headers["Authorization"] = f"Bearer {key}"
    assert (await client.get("/v1/experiments")).status_code == 200


async def test_keys_list_shows_ids_names_and_scopes_but_never_a_key(
    cli_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await _run_async(["keys", "create", "--name", "dashboard", "--scopes", "read", "--expires-in-days", "30"])
    key = capsys.readouterr().out.strip()
    assert await _run_async(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    line = next(line for line in listing.splitlines() if "\tdashboard\t" in line)
    assert "\tread\t" in line and "active" in line and "expires 20" in line
    assert key not in listing


async def test_keys_revoke_stops_a_key(cli_database: str, capsys: pytest.CaptureFixture[str]) -> None:
    await _run_async(["keys", "create", "--name", "leaked", "--scopes", "admin"])
    capsys.readouterr()
    connection = await asyncpg.connect(cli_database)
    try:
        key_id = await connection.fetchval("SELECT id FROM api_keys WHERE name = 'leaked'")
        assert await _run_async(["keys", "revoke", str(key_id)]) == 0
        assert await connection.fetchval("SELECT revoked_at IS NOT NULL FROM api_keys WHERE id = $1", key_id)
    finally:
        await connection.close()


async def test_keys_create_refuses_an_unknown_scope(cli_database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert await _run_async(["keys", "create", "--name", "x", "--scopes", "root"]) == 2
    assert capsys.readouterr().out == ""


async def test_the_first_admin_key_is_printed_once_with_how_to_use_it(
    cli_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    await asyncio.to_thread(announce_first_admin_key, cli_database, "http://127.0.0.1:8000")
    first = capsys.readouterr().out
    await asyncio.to_thread(announce_first_admin_key, cli_database, "http://127.0.0.1:8000")
    assert 'curl -H "Authorization: Bearer $COUNTERFACT_KEY" http://127.0.0.1:8000/v1/experiments' in first
    assert capsys.readouterr().out == ""


async def _count(database_url: str, sql: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        return int(await connection.fetchval(sql))
    finally:
        await connection.close()


async def test_workspaces_create_makes_one_that_workspaces_list_shows(
    cli_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _run_async(["workspaces", "create", "brand-a"]) == 0
    assert capsys.readouterr().out == "brand-a\n"
    assert await _run_async(["workspaces", "list"]) == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == ["default", "brand-a"]


async def test_workspaces_create_refuses_a_name_taken_or_unusable(
    cli_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _run_async(["workspaces", "create", "default"]) == 2
    assert "exists already" in capsys.readouterr().err
    assert await _run_async(["workspaces", "create", "brand a"]) == 2
    assert "is not a workspace name" in capsys.readouterr().err
    assert await _count(cli_database, "SELECT count(*) FROM workspaces") == 1


async def test_keys_create_for_an_unknown_workspace_is_refused_and_makes_nothing(
    cli_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = await _count(cli_database, "SELECT count(*) FROM api_keys")
    code = await _run_async(["keys", "create", "--name", "typo", "--scopes", "write", "--workspace", "brnad-a"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert "no workspace named 'brnad-a'" in captured.err
    assert await _count(cli_database, "SELECT count(*) FROM api_keys") == before
    assert await _count(cli_database, "SELECT count(*) FROM workspaces") == 1


async def test_keys_create_with_a_workspace_issues_a_key_that_sees_only_it(
    cli_database: str, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    body = {
        "kind": "holdout",
        "name": "in default",
        "metric": {"kind": "proportion"},
        "channels": [{"name": "m", "holdout_fraction": 0.1}],
    }
    assert (await client.post("/v1/experiments", json=body)).status_code == 201
    await _run_async(["workspaces", "create", "brand-a"])
    await _run_async(["keys", "create", "--name", "brand a", "--scopes", "write", "--workspace", "brand-a"])
    key = capsys.readouterr().out.splitlines()[-1]
    client.headers["Authorization"] = f"Bearer {key}"
    assert (await client.get("/v1/experiments")).json()["items"] == []
    assert await _run_async(["keys", "list"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if "\tbrand a\t" in line)
    assert "\tworkspace brand-a\t" in line


async def test_keys_create_all_workspaces_needs_the_admin_scope(
    cli_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = await _count(cli_database, "SELECT count(*) FROM api_keys")
    assert await _run_async(["keys", "create", "--name", "x", "--scopes", "write", "--all-workspaces"]) == 2
    assert "only an admin key may work in every workspace" in capsys.readouterr().err
    assert await _count(cli_database, "SELECT count(*) FROM api_keys") == before
    assert await _run_async(["keys", "create", "--name", "ops", "--scopes", "admin", "--all-workspaces"]) == 0
    assert "every workspace" in capsys.readouterr().err
