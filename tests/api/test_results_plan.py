"""The holdout results aggregate cannot fall back to a quadratic plan: right after a bulk load, before the
statistics know the new experiment, its join is still hashed or merged (checked with ``EXPLAIN (FORMAT
JSON)`` on the machine's PostgreSQL and on the embedded one) and its rows are grouped by hashing, not
sorted; a bulk load through the API refreshes the statistics of what it grew. The probes for an
experiment's first outcome read the primary key, never a sequential scan through the rows of the
experiments loaded before it."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.db.database import apply_migrations, load_migrations
from api.db.embedded import start_embedded_postgres, stop_embedded_postgres
from api.experiments.repository import QUERIES as EXPERIMENT_QUERIES
from api.results.repository import QUERIES as RESULTS_QUERIES
from api.results.repository import ResultsRepository
from testkit.database import execute, with_database

Client = AsyncTestClient[Litestar]

FILL_ASSIGNMENTS = """
INSERT INTO assignments (experiment_id, unit, position, arm, assigned_at)
SELECT $1, 'user-' || g, 0, (g % 10 = 0)::int, now() FROM generate_series(1, $2::int) AS g
"""
FILL_OUTCOMES = """
INSERT INTO holdout_outcomes (experiment_id, unit, value, covariate, recorded_at)
SELECT $1, 'user-' || g, (g % 7)::float8, NULL, now() FROM generate_series(1, $2::int) AS g
"""
# The same sufficient statistics, computed without a join: outcome g belongs to unit g, in the holdout when
# g is a multiple of 10.
EXPECTED = """
SELECT (g % 10 = 0)::int AS arm, count(*) AS units, sum((g % 7)::float8) AS sum
FROM generate_series(1, $1::int) AS g GROUP BY 1 ORDER BY 1
"""


def _plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


def _quadratic_joins(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Nested loops that match units by a join filter (every row of one side against every row of the other)."""
    return [
        node
        for node in _plan_nodes(plan)
        if node["Node Type"] == "Nested Loop" and "unit" in node.get("Join Filter", "")
    ]


def _scan_estimate(plan: dict[str, Any], relation: str) -> float:
    return float(sum(node["Plan Rows"] for node in _plan_nodes(plan) if node.get("Relation Name") == relation))


async def _explain(connection: asyncpg.Connection, experiment_id: uuid.UUID) -> dict[str, Any]:
    text = await connection.fetchval(
        "EXPLAIN (FORMAT JSON) " + RESULTS_QUERIES["aggregate_outcomes"], experiment_id, 0.0, 0.0
    )
    plan: dict[str, Any] = json.loads(text)[0]["Plan"]
    return plan


@pytest.fixture(scope="module")
def embedded_server_url() -> Iterator[str]:
    """The embedded PostgreSQL the service falls back to (a server of its own, for this module), in a
    directory of its own: pytest prunes its numbered temporary directories when other sessions start."""
    with tempfile.TemporaryDirectory(prefix="counterfact_plans_") as directory:
        data_dir = Path(directory)
        yield start_embedded_postgres(data_dir)
        stop_embedded_postgres(data_dir)


@pytest.fixture(params=["machine", "embedded"])
async def fresh_connection(request: pytest.FixtureRequest, server_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a migrated throwaway database on the machine's server (``DATABASE_URL``) or the
    embedded one, autovacuum off on the two tables so that their statistics stay as the test leaves them."""
    if request.param == "embedded":
        if not os.environ.get("DATABASE_URL"):
            pytest.skip("without DATABASE_URL the machine's server is the embedded one already")
        server_url = request.getfixturevalue("embedded_server_url")
    name = f"counterfact_plan_{uuid.uuid4().hex[:12]}"
    await execute(server_url, f'CREATE DATABASE "{name}"')
    connection = await asyncpg.connect(with_database(server_url, name))
    try:
        await apply_migrations(connection, load_migrations())
        await connection.execute("ALTER TABLE assignments SET (autovacuum_enabled = false)")
        await connection.execute("ALTER TABLE holdout_outcomes SET (autovacuum_enabled = false)")
        yield connection
    finally:
        await connection.close()
        await execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _load_after_analyze(connection: asyncpg.Connection) -> uuid.UUID:
    """Load an experiment of 20,000 units with their outcomes, ANALYZE, then load a second one of 5,000 that the
    statistics do not know; the second's id."""
    first, second = uuid.uuid4(), uuid.uuid4()
    await connection.execute(FILL_ASSIGNMENTS, first, 20_000)
    await connection.execute(FILL_OUTCOMES, first, 20_000)
    await connection.execute("ANALYZE assignments")
    await connection.execute("ANALYZE holdout_outcomes")
    await connection.execute(FILL_ASSIGNMENTS, second, 5_000)  # loaded after the last ANALYZE
    await connection.execute(FILL_OUTCOMES, second, 5_000)
    return second


async def test_results_aggregate_is_hashed_or_merged_when_the_statistics_do_not_know_the_experiment(
    fresh_connection: asyncpg.Connection,
) -> None:
    connection = fresh_connection
    second = await _load_after_analyze(connection)
    stale = await _explain(connection, second)
    assert _scan_estimate(stale, "assignments") < 100  # the premise: the planner expects next to nothing
    async with connection.transaction():
        rows = await ResultsRepository(connection).aggregate_outcomes(second, 0.0, 0.0)
        plan = await _explain(connection, second)  # planned as the service's transaction plans it
    assert _quadratic_joins(plan) == []
    expected = await connection.fetch(EXPECTED, 5_000)
    got = sorted(rows, key=lambda r: r["arm"])
    assert [(r["arm"], r["units"], r["sum"]) for r in got] == [(e["arm"], e["units"], e["sum"]) for e in expected]


async def test_results_aggregate_groups_by_hashing_without_sorting_the_joined_rows(
    fresh_connection: asyncpg.Connection,
) -> None:
    connection = fresh_connection
    second = await _load_after_analyze(connection)
    async with connection.transaction():
        await ResultsRepository(connection).aggregate_outcomes(second, 0.0, 0.0)
        plan = await _explain(connection, second)
    assert [node["Node Type"] for node in _plan_nodes(plan) if node["Node Type"] == "Sort"] == []
    assert {node["Strategy"] for node in _plan_nodes(plan) if node["Node Type"] == "Aggregate"} == {"Hashed"}


async def test_the_probes_for_an_experiments_first_outcome_read_the_primary_key_not_the_table(
    fresh_connection: asyncpg.Connection,
) -> None:
    connection = fresh_connection
    first, second = uuid.uuid4(), uuid.uuid4()
    await connection.execute(FILL_OUTCOMES, first, 20_000)
    await connection.execute(FILL_OUTCOMES, second, 5_000)  # its rows after all of the first's
    await connection.execute("ANALYZE holdout_outcomes")  # the statistics know it: a fifth of the table
    for query in (EXPERIMENT_QUERIES["has_outcomes"], RESULTS_QUERIES["outcome_shifts"]):
        text = await connection.fetchval("EXPLAIN (FORMAT JSON) " + query, second)
        scans = [node["Node Type"] for node in _plan_nodes(json.loads(text)[0]["Plan"]) if "Scan" in node["Node Type"]]
        assert scans and all(scan in ("Index Scan", "Index Only Scan") for scan in scans), (query, scans)


async def _post_csv(client: Client, path: str, text: str) -> None:
    response = await client.post(path, content=text.encode(), headers={"Content-Type": "text/csv"})
    assert response.status_code in (200, 201), response.text


async def _load(client: Client, units: int) -> str:
    body = {
        "kind": "holdout",
        "name": "plan",
        "metric": {"kind": "mean"},
        "channels": [{"name": "meta", "holdout_fraction": 0.2}],
    }
    experiment_id: str = (await client.post("/v1/experiments", json=body)).json()["id"]
    names = [f"unit-{i}" for i in range(units)]
    await _post_csv(client, f"/v1/experiments/{experiment_id}/assignments", "unit\n" + "\n".join(names) + "\n")
    values = np.random.default_rng(units).gamma(2.0, 5.0, units).round(3)
    lines = "\n".join(f"{u},{v!r}" for u, v in zip(names, values.tolist(), strict=True))
    await _post_csv(client, f"/v1/experiments/{experiment_id}/outcomes", "unit,value\n" + lines + "\n")
    return experiment_id


async def test_a_bulk_load_through_the_api_leaves_statistics_that_know_the_experiment(
    client: Client, database_url: str
) -> None:
    await _load(client, 4_000)
    second = uuid.UUID(await _load(client, 1_000))  # a quarter of the rows already there: statistics refreshed
    connection = await asyncpg.connect(database_url)
    try:
        plan = await _explain(connection, second)
    finally:
        await connection.close()
    assert _scan_estimate(plan, "assignments") > 500
    assert _scan_estimate(plan, "holdout_outcomes") > 500
    assert _quadratic_joins(plan) == []
    results = await client.get(f"/v1/experiments/{second}/results")
    assert results.status_code == 200, results.text
    assert results.json()["outcomes"]["units_with_outcome"] == 1_000
