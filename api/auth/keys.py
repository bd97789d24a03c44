"""API keys: how they are made, hashed and compared, and what their scopes grant.

A key is ``cf_`` followed by 32 random bytes (256 bits) in URL-safe base64. Only its SHA-256 digest is
stored. A plain, fast hash is enough here: slow password hashes (bcrypt, argon2) exist to make guessing
a *low-entropy* secret from its hash expensive, but guessing one of 2^256 keys is out of reach at any
hashing speed, and a fast hash keeps the per-request check cheap.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

KEY_PREFIX = "cf_"
KEY_BYTES = 32


class Scope(enum.Enum):
    """What a key may do; each scope implies the ones below it (admin ⊃ write ⊃ read)."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def grants(self, required: Scope) -> bool:
        """Whether a key with this scope may run an operation that requires ``required``."""
        return self.rank >= required.rank

    def implied(self) -> list[str]:
        """This scope and every scope it implies, lowest first (``["read", "write"]`` for write)."""
        return [scope.value for scope in Scope if scope.rank <= self.rank]


_RANKS = {Scope.READ: 0, Scope.WRITE: 1, Scope.ADMIN: 2}


def highest_scope(names: list[str]) -> Scope:
    """The scope a list such as ``["read", "write"]`` grants in full; ``ValueError`` on an unknown name."""
    if not names:
        raise ValueError("at least one scope is required (read, write or admin)")
    scopes = []
    for name in names:
        try:
            scopes.append(Scope(name.strip().lower()))
        except ValueError:
            raise ValueError(f"unknown scope {name!r}: use read, write or admin") from None
    return max(scopes, key=lambda scope: scope.rank)


def generate_key() -> str:
    """A new random key (256 bits), to be shown once and stored only as its hash."""
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def hash_key(key: str) -> bytes:
    """The SHA-256 digest a key is stored and looked up by."""
    return hashlib.sha256(key.encode("utf-8")).digest()


def hashes_match(stored: bytes, presented: bytes) -> bool:
    """Constant-time comparison of a stored digest with the presented key's digest."""
    return hmac.compare_digest(stored, presented)


@dataclass(frozen=True)
class ApiKey:
    """A stored key as the service knows it (never the key itself). ``workspace`` is ``None`` for an admin
    key that works in every workspace."""

    id: UUID
    name: str
    scope: Scope
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    workspace: str | None

    def refusal(self, now: datetime) -> str | None:
        """Why this key cannot be used at ``now``, or ``None`` when it can."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return None
