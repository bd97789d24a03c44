"""Fixtures of the API tests beyond ``tests/conftest.py``'s client: the test's own database connection and
pool (to read what the service wrote), and GeoLift's walkthrough history uploaded."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from api.db.database import create_pool
from api.settings import Settings
from testkit.panels import pretest_csv
from tests.api.helpers import Client, upload_dataset


@pytest.fixture
async def connection(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own (not the service's) to the test database."""
    opened = await asyncpg.connect(database_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def pool(settings: Settings, database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool as the service opens it, for calling services and repositories directly."""
    opened = await create_pool(database_url, settings)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def dataset_id(client: Client) -> str:
    """GeoLift's walkthrough history uploaded: 40 cities x 90 days (2021-01-01..2021-03-31)."""
    return await upload_dataset(client, pretest_csv())
