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
