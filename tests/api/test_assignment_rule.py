"""``GET /v1/experiments/{id}/assignment-rule``: the rule, and SQL a warehouse runs to get the API's arms.

The PostgreSQL and DuckDB queries are run here, as handed out, on a million units (a salt with quotes, a
backslash, a semicolon and non-ASCII letters; units with commas, quotes and emoji), and must give every
unit the arm the API stored for it. BigQuery and Snowflake are not available here: their queries are
checked for the same arithmetic only.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import asyncpg
import duckdb
import pandas as pd
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from stats.assignment_hash import assign_channels_by_rule, sha256_threshold
from tests.api.helpers import unspent_geolift_design
from tests.api.test_experiments import small_dataset

Client = AsyncTestClient[Litestar]
SALT = "it's a \\ 'salt'; -- ü ユ"
CHANNELS: list[dict[str, Any]] = [
    {"name": "meta", "holdout_fraction": 0.1},
    {"name": "search.brand-2_x", "holdout_fraction": 0.35},
]
SPECIAL_UNITS = ["a,b", 'quote"d', "it's", "back\\slash", " spaced ", "é", "ユーザー", "😀", "x;--", "tab\there"]
MILLION = 1_000_000


async def create(client: Client, **overrides: Any) -> str:
    body = {
        "kind": "holdout",
        "name": "warehouse",
        "metric": {"kind": "proportion"},
        "channels": CHANNELS,
        "salt": SALT,
        **overrides,
    }
    response = await client.post("/v1/experiments", json=body)
    assert response.status_code == 201, response.text
    experiment_id: str = response.json()["id"]
    return experiment_id


async def rule_of(client: Client, experiment_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/experiments/{experiment_id}/assignment-rule")
    assert response.status_code == 200, response.text
    rule: dict[str, Any] = response.json()
    return rule


@pytest.fixture
async def million_assigned(client: Client) -> tuple[str, list[str]]:
    """A sha256 experiment whose million units the API assigned and stored (CSV bulk upload)."""
    experiment_id = await create(client)
    units = [f"user-{i}" for i in range(MILLION - len(SPECIAL_UNITS))] + SPECIAL_UNITS
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["unit"])
    writer.writerows([unit] for unit in units)
    response = await client.post(
        f"/v1/experiments/{experiment_id}/assignments",
        content=out.getvalue().encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["units_assigned"] == MILLION
    return experiment_id, units


def without_semicolon(query: str) -> str:
    return query.rstrip().removesuffix(";")


async def test_the_postgresql_query_gives_every_unit_the_arm_the_api_stored(
    client: Client, connection: asyncpg.Connection, million_assigned: tuple[str, list[str]]
) -> None:
    experiment_id, units = million_assigned
    query = (await rule_of(client, experiment_id))["sql"]["postgresql"]
    await connection.execute("CREATE TEMP TABLE units (unit text)")
    await connection.copy_records_to_table("units", records=[(u,) for u in units])
    counts = await connection.fetchrow(
        f"""
        WITH warehouse AS ({without_semicolon(query)})
        SELECT count(*) AS rows,
               count(*) FILTER (WHERE (s.arm = 1) <> (w.arm = 'holdout')) AS disagreements,
               count(*) FILTER (WHERE s.arm IS NULL) AS unmatched
        FROM warehouse AS w
        JOIN experiment_channels AS c ON c.experiment_id = $1 AND c.name = w.channel
        LEFT JOIN assignments AS s ON s.experiment_id = $1 AND s.unit = w.unit AND s.position = c.position
        """,
        experiment_id,
    )
    assert counts is not None
    assert dict(counts) == {"rows": 2 * MILLION, "disagreements": 0, "unmatched": 0}


async def test_the_duckdb_query_gives_every_unit_the_arm_the_api_computes(client: Client) -> None:
    """Every (unit, channel) once, and per channel exactly the units the API holds out, as computed by the
    function its assignment service runs (the PostgreSQL test above checks the arms it stores)."""
    experiment_id = await create(client)
    units = [f"user-{i}" for i in range(MILLION - len(SPECIAL_UNITS))] + SPECIAL_UNITS
    query = (await rule_of(client, experiment_id))["sql"]["duckdb"]
    database = duckdb.connect()
    database.register("frame", pd.DataFrame({"unit": units}))
    database.execute("CREATE TABLE units AS SELECT unit FROM frame")
    database.execute(f"CREATE TABLE warehouse AS {without_semicolon(query)}")
    counted = database.execute("SELECT count(*), count(DISTINCT (unit, channel)) FROM warehouse").fetchone()
    assert counted == (2 * MILLION, 2 * MILLION)
    channels = [(c["name"], c["holdout_fraction"]) for c in CHANNELS]
    arms = assign_channels_by_rule("sha256", SALT, channels, units)
    for (name, fraction), channel_arms in zip(channels, arms, strict=True):
        held = database.execute("SELECT unit FROM warehouse WHERE channel = ? AND arm = 'holdout'", [name]).fetchall()
        expected = {unit for unit, arm in zip(units, channel_arms.tolist(), strict=True) if arm == 1}
        assert {unit for (unit,) in held} == expected
        assert len(expected) == pytest.approx(MILLION * fraction, rel=0.01)


async def test_the_rule_states_the_salt_channels_and_integer_thresholds(client: Client) -> None:
    experiment_id = await create(client)
    rule = await rule_of(client, experiment_id)
    assert rule["rule"] == "sha256" and rule["salt"] == SALT
    assert [(c["name"], c["holdout_fraction"], c["threshold"]) for c in rule["channels"]] == [
        (c["name"], c["holdout_fraction"], sha256_threshold(c["holdout_fraction"])) for c in CHANNELS
    ]
    prefix = bytes.fromhex(rule["channels"][0]["message_prefix_hex"])
    assert prefix == f"{SALT}\x1fmeta\x1f".encode()
    assert set(rule["sql"]) == {"postgresql", "duckdb", "bigquery", "snowflake"}


async def test_the_salt_enters_every_query_only_as_hex(client: Client) -> None:
    """No literal of the salt to escape: a quote or backslash in it cannot end a string early."""
    experiment_id = await create(client)
    rule = await rule_of(client, experiment_id)
    for dialect, query in rule["sql"].items():
        assert "salt" not in query, dialect
        for channel in rule["channels"]:
            assert channel["message_prefix_hex"] in query and str(channel["threshold"]) in query


@pytest.mark.parametrize(("dialect", "hash_call"), [("bigquery", "SHA256("), ("snowflake", "SHA2(")])
async def test_the_untested_dialects_use_the_same_arithmetic_and_say_so(
    client: Client, dialect: str, hash_call: str
) -> None:
    rule = await rule_of(client, await create(client))
    query = rule["sql"][dialect]
    assert "untested" in query.lower() or "not run by" in query.lower()
    assert hash_call in query and "1, 13" in query and "< c.threshold" in query


async def test_a_blake2b_experiment_has_its_rule_but_no_warehouse_sql(client: Client) -> None:
    rule = await rule_of(client, await create(client, assignment_rule="blake2b"))
    assert rule["rule"] == "blake2b" and rule["sql"] is None
    assert all(c["threshold"] is None for c in rule["channels"])


async def test_new_experiments_default_to_the_sha256_rule(client: Client) -> None:
    body = {"kind": "holdout", "name": "default", "metric": {"kind": "proportion"}, "channels": CHANNELS}
    created = (await client.post("/v1/experiments", json=body)).json()
    assert created["assignment_rule"] == "sha256"


async def test_a_geo_experiment_has_no_assignment_rule(client: Client) -> None:
    created = (await client.post("/v1/experiments", json=unspent_geolift_design(await small_dataset(client)))).json()
    response = await client.get(f"/v1/experiments/{created['id']}/assignment-rule")
    assert response.status_code == 409


async def test_an_unknown_assignment_rule_is_400_naming_it(client: Client) -> None:
    body = {"kind": "holdout", "name": "x", "metric": {"kind": "proportion"}, "channels": CHANNELS}
    response = await client.post("/v1/experiments", json={**body, "assignment_rule": "md5"})
    assert response.status_code == 400
    assert "assignment_rule" in response.text
