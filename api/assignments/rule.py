"""``GET /v1/experiments/{id}/assignment-rule``: a holdout experiment's assignment rule, and the same rule as
SQL for the warehouses, so callers compute arms where their units are.

The queries (``warehouse.sql``) carry the salt only as the hex of the message prefix and channel names as
escaped string literals, so no salt or name can break out of a literal; the thresholds are integers the
service computes (``stats.assignment_hash.sha256_threshold``), so no dialect's rounding enters the rule.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from uuid import UUID

import asyncpg

from api.assignments.schemas import AssignmentRule, RuleChannel, WarehouseQueries
from api.assignments.service import load_design
from api.db.sql_queries import load_queries
from stats.assignment_hash import message_prefix, sha256_threshold

TEMPLATES = load_queries(Path(__file__).with_name("warehouse.sql"))

FORMULAS = {
    "sha256": "message = UTF-8(salt) ‖ 0x1F ‖ UTF-8(channel) ‖ 0x1F ‖ UTF-8(unit); h = the first 13 hex digits of "
    "SHA-256(message) read as an integer (its top 52 bits); the unit is `holdout` in the channel when "
    "h < threshold, where threshold = floor(holdout_fraction × 2^52 + 1/2), else `treatment`.",
    "blake2b": "message = UTF-8(salt) ‖ 0x1F ‖ UTF-8(channel) ‖ 0x1F ‖ UTF-8(unit); u = BLAKE2b(message) with an "
    "8-byte digest read as a big-endian unsigned 64-bit integer; fraction = (u >> 11) / 2^53; the unit is "
    "`holdout` in the channel when fraction < holdout_fraction, else `treatment`.",
}


def standard_literal(text: str) -> str:
    """A string literal of PostgreSQL and DuckDB (standard SQL: a quote is doubled, a backslash is itself)."""
    return "'" + text.replace("'", "''") + "'"


def escaped_literal(text: str) -> str:
    """A string literal of BigQuery and Snowflake, where a backslash starts an escape."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


Row = tuple[str, str, int]  # channel name, message prefix in hex, threshold
RowWriter = Callable[[Row], str]

ROW_WRITERS: dict[str, tuple[RowWriter, str]] = {
    "postgresql": (lambda r: f"        ({standard_literal(r[0])}, decode('{r[1]}', 'hex'), {r[2]}::bigint)", ",\n"),
    "duckdb": (lambda r: f"        ({standard_literal(r[0])}, unhex('{r[1]}'), CAST({r[2]} AS BIGINT))", ",\n"),
    "bigquery": (
        lambda r: f"    SELECT {escaped_literal(r[0])} AS channel, FROM_HEX('{r[1]}') AS prefix, {r[2]} AS threshold",
        "\n    UNION ALL\n",
    ),
    "snowflake": (
        lambda r: f"    SELECT {escaped_literal(r[0])}, HEX_DECODE_STRING('{r[1]}'), {r[2]}",
        "\n    UNION ALL\n",
    ),
}


def warehouse_query(dialect: str, experiment_id: UUID, rows: list[Row]) -> str:
    """The ``sha256`` rule for ``dialect`` over a table ``units(unit)``, ready to paste."""
    write, separator = ROW_WRITERS[dialect]
    template = TEMPLATES[dialect]
    query = template.replace("{channels}", separator.join(write(row) for row in rows))
    return query.replace("{experiment_id}", str(experiment_id)) + ";\n"


def warehouse_queries(experiment_id: UUID, rows: list[Row]) -> WarehouseQueries:
    return WarehouseQueries(**{dialect: warehouse_query(dialect, experiment_id, rows) for dialect in ROW_WRITERS})


async def assignment_rule(pool: asyncpg.Pool, experiment_id: UUID) -> AssignmentRule:
    """The experiment's rule, salt, channels with their thresholds, and (``sha256``) the SQL per dialect;
    404 unknown, 409 for a geo experiment."""
    async with pool.acquire() as connection:
        design = await load_design(connection, experiment_id, for_write=False)
    sha256 = design.rule == "sha256"
    channels = [
        RuleChannel(
            name=name,
            holdout_fraction=fraction,
            threshold=sha256_threshold(fraction) if sha256 else None,
            message_prefix_hex=message_prefix(design.salt, name).hex(),
        )
        for name, fraction in design.channels
    ]
    rows = [(c.name, c.message_prefix_hex, c.threshold) for c in channels if c.threshold is not None]
    return AssignmentRule(
        experiment_id=experiment_id,
        rule="sha256" if sha256 else "blake2b",
        formula=FORMULAS[design.rule],
        salt=design.salt,
        channels=channels,
        sql=warehouse_queries(experiment_id, rows) if sha256 else None,
    )
