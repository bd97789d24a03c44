"""``counterfact keys create|list|revoke``, ``counterfact workspaces create|list``, and the first admin key
``counterfact serve`` prints once."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from api.auth import service
from api.auth.caller import DEFAULT_WORKSPACE
from api.auth.keys import ApiKey, highest_scope
from api.db.database import Connection, apply_migrations, load_migrations
from api.workspaces.repository import WorkspaceRepository, create_workspace

T = TypeVar("T")


def add_key_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``keys create``, ``keys list`` and ``keys revoke`` on the ``counterfact`` parser."""
    keys = commands.add_parser("keys", help="make, list and revoke API keys")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    create = actions.add_parser("create", help="make a key and print it (shown once) alone on stdout")
    create.add_argument("--name", required=True, help="who or what the key is for")
    create.add_argument(
        "--scopes", required=True, help="read, write or admin; a list such as read,write grants the highest"
    )
    create.add_argument("--expires-in-days", type=float, default=None, help="days until the key stops working")
    where = create.add_mutually_exclusive_group()
    where.add_argument(
        "--workspace",
        default=DEFAULT_WORKSPACE,
        help="the workspace the key works in (default: default); it must exist",
    )
    where.add_argument(
        "--all-workspaces",
        action="store_true",
        help="an admin key that reads every workspace and writes into the one a request names",
    )
    actions.add_parser("list", help="list keys (never the keys themselves)")
    revoke = actions.add_parser("revoke", help="revoke a key for good")
    revoke.add_argument("id", type=uuid.UUID, help="the key's id, as `keys list` shows it")


def run_key_command(args: argparse.Namespace, database_url: str) -> int:
    """Run the ``keys`` sub-command in ``args`` against ``database_url``; the exit status."""
    if args.keys_command == "create":
        try:
            scope = highest_scope(args.scopes.split(","))
        except ValueError as exc:
            print(f"counterfact keys create: {exc}", file=sys.stderr)
            return 2
        try:
            made = _run(
                database_url,
                lambda c: service.create_key(
                    c,
                    name=args.name,
                    scope=scope,
                    expires_in_days=args.expires_in_days,
                    workspace=None if args.all_workspaces else args.workspace,
                ),
            )
        except ValueError as exc:
            print(f"counterfact keys create: {exc}", file=sys.stderr)
            return 2
        print(made.secret)
        print(
            f"created key {made.key.id} ({made.key.name}, scope {made.key.scope.value}, {_where(made.key)}); "
            "it is shown only this once",
            file=sys.stderr,
        )
        return 0
    if args.keys_command == "list":
        for key in _run(database_url, service.list_keys):
            print(_describe(key))
        return 0
    revoked = _run(database_url, lambda c: service.revoke_key(c, args.id))
    if revoked is None:
        print(f"counterfact keys revoke: no key {args.id}", file=sys.stderr)
        return 1
    print(_describe(revoked))
    return 0


def announce_first_admin_key(database_url: str, base_url: str) -> None:
    """On a database that never had one, make an admin key and print it once with how to use it."""
    made = _run(database_url, service.create_first_admin_key)
    if made is None:
        return
    print(
        f"\nCreated the first admin API key (shown only this once; keep it):\n\n    {made.secret}\n\n"
        "Send it on every /v1 call, e.g.\n\n"
        f"    export COUNTERFACT_KEY={made.secret}\n"
        f'    curl -H "Authorization: Bearer $COUNTERFACT_KEY" {base_url}/v1/experiments\n\n'
        "Make more with `counterfact keys create --name NAME --scopes read|write|admin`.\n",
        flush=True,
    )


def add_workspace_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``workspaces create`` and ``workspaces list`` on the ``counterfact`` parser."""
    workspaces = commands.add_parser("workspaces", help="make and list workspaces (teams kept apart)")
    actions = workspaces.add_subparsers(dest="workspaces_command", required=True)
    create = actions.add_parser("create", help="make a workspace; issue keys for it with `keys create --workspace`")
    create.add_argument("name", help="1 to 64 letters, digits, '.', '_' or '-'")
    actions.add_parser("list", help="list workspaces")


def run_workspace_command(args: argparse.Namespace, database_url: str) -> int:
    """Run the ``workspaces`` sub-command in ``args`` against ``database_url``; the exit status."""
    if args.workspaces_command == "create":
        try:
            made = _run(database_url, lambda c: create_workspace(c, args.name))
        except ValueError as exc:
            print(f"counterfact workspaces create: {exc}", file=sys.stderr)
            return 2
        print(made.name)
        return 0
    for workspace in _run(database_url, lambda c: WorkspaceRepository(c).list()):
        print(f"{workspace.name}\tcreated {workspace.created_at.isoformat()}")
    return 0


def _where(key: ApiKey) -> str:
    return "every workspace" if key.workspace is None else f"workspace {key.workspace}"


def _describe(key: ApiKey) -> str:
    expires = key.expires_at.isoformat() if key.expires_at else "never"
    state = "revoked " + key.revoked_at.isoformat() if key.revoked_at else "active"
    return "\t".join(
        [
            str(key.id),
            key.name,
            ",".join(key.scope.implied()),
            _where(key),
            f"created {key.created_at.isoformat()}",
            f"expires {expires}",
            state,
        ]
    )


def _run(database_url: str, action: Callable[[Connection], Awaitable[T]]) -> T:
    """Apply pending migrations, then run ``action`` on one connection."""

    async def main() -> T:
        connection = await asyncpg.connect(database_url)
        try:
            await apply_migrations(connection, load_migrations())
            return await action(connection)
        finally:
            await connection.close()

    return asyncio.run(main())
