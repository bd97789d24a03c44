"""Contract tests run over real HTTP against ``live_server_url`` (tests/conftest.py)."""

from __future__ import annotations

import asyncio

import pytest

from api.auth.keys import Scope
from testkit.database import make_key


@pytest.fixture
def admin_headers(database_url: str) -> dict[str, str]:
    """An ``Authorization`` header with a new admin key (tables may have been emptied by earlier tests)."""
    return {"Authorization": f"Bearer {asyncio.run(make_key(database_url, Scope.ADMIN))}"}
