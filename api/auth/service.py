"""Making, listing, revoking and checking API keys."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from api.auth.caller import DEFAULT_WORKSPACE
from api.auth.keys import ApiKey, Scope, generate_key, hash_key, hashes_match
from api.auth.repository import ApiKeyRepository
from api.db.database import Connection
from api.workspaces.repository import WorkspaceRepository

FIRST_ADMIN_KEY_MARKER = "first_admin_key"


@dataclass(frozen=True)
class NewKey:
    """A key just made: the secret (shown once) and what is stored about it."""

    secret: str
    key: ApiKey


async def create_key(
    connection: Connection,
    *,
    name: str,
    scope: Scope,
    expires_in_days: float | None = None,
    workspace: str | None = DEFAULT_WORKSPACE,
) -> NewKey:
    """Make and store a new key working in the workspace named ``workspace`` (``None``: in every workspace,
    for an admin key only); the secret is returned here and nowhere else. ``ValueError``, and nothing
    stored, for an unknown workspace."""
    if not name.strip():
        raise ValueError("a key needs a name")
    if expires_in_days is not None and expires_in_days <= 0:
        raise ValueError("--expires-in-days must be positive")
    if workspace is None and scope is not Scope.ADMIN:
        raise ValueError("only an admin key may work in every workspace (--all-workspaces needs --scopes admin)")
    if workspace is not None and await WorkspaceRepository(connection).find(workspace) is None:
        raise ValueError(f"no workspace named {workspace!r} (make it with `counterfact workspaces create`)")
    expires_at = None if expires_in_days is None else datetime.now(UTC) + timedelta(days=expires_in_days)
    secret = generate_key()
    stored = await ApiKeyRepository(connection).insert(
        key_id=uuid.uuid4(),
        name=name.strip(),
        key_hash=hash_key(secret),
        scope=scope,
        expires_at=expires_at,
        workspace=workspace,
    )
    return NewKey(secret=secret, key=stored)


async def create_first_admin_key(connection: Connection) -> NewKey | None:
    """An admin key the first time the service starts on a database, ``None`` every time after."""
    async with connection.transaction():
        if not await ApiKeyRepository(connection).claim_marker(FIRST_ADMIN_KEY_MARKER):
            return None
        return await create_key(connection, name="first admin key", scope=Scope.ADMIN)


async def find_key(connection: Connection, presented: str) -> ApiKey | None:
    """The stored key ``presented`` is, whatever its state; ``None`` when no key hashes to it."""
    digest = hash_key(presented)
    found = await ApiKeyRepository(connection).find_by_hash(digest)
    if found is None:
        return None
    key, stored_digest = found
    return key if hashes_match(stored_digest, digest) else None


async def list_keys(connection: Connection) -> list[ApiKey]:
    return await ApiKeyRepository(connection).list()


async def revoke_key(connection: Connection, key_id: uuid.UUID) -> ApiKey | None:
    """Revoke a key for good; ``None`` when there is no such key."""
    return await ApiKeyRepository(connection).revoke(key_id)
