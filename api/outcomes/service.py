"""Rules of unit-level outcomes: validate, stage with ``COPY``, store all or nothing, report strays.

An upload (JSON or streamed CSV) is one transaction. Its rows are parsed and checked in worker threads,
``COPY``-ed into a temporary staging table, checked for repeated units, compared with the stored
assignments (units never assigned are counted and named, and still stored), and then upserted into
``holdout_outcomes``: re-sending a unit replaces its outcome, so a nightly job can re-send everything.
Once committed, an upload that grew the table by a tenth or more refreshes its statistics (``VACUUM ANALYZE``)
before answering, so that what is read next is planned for the rows now there, and finds them all-visible.

An experiment's results come either from aggregate observations or from unit-level outcomes, never a
mix of the two: sending one kind when the other is stored is refused (409).
"""

from __future__ import annotations

import csv
import math
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from uuid import UUID

import anyio.to_thread
import asyncpg

from api.assignments.service import unit_problem
from api.audit import service as audit
from api.db.database import Connection
from api.experiments.repository import ExperimentRepository
from api.experiments.revisions import bump_data_revision
from api.experiments.service import lock_for_results_data, lock_holdout_experiment
from api.http.errors import InvalidInput, invalid_field
from api.http.request_bodies import decode_json_body, line_batches
from api.outcomes.repository import OutcomeRepository, StagedRow
from api.outcomes.schemas import (
    MAX_ABS_VALUE,
    MAX_UNASSIGNED_EXAMPLES,
    OutcomesAccepted,
    OutcomesUpload,
    SpendAccepted,
    SpendUpload,
)

CSV_BATCH_ROWS = 50_000
MAX_CSV_LINE_BYTES = 2048  # a quoted 256-character unit id (at most 1,024 bytes) and two numbers fit
CSV_HEADERS = {("unit", "value"): False, ("unit", "value", "covariate"): True}


# --- parsing --------------------------------------------------------------------------------------


def parse_number(text: str, field: str, *, conversion: bool) -> float:
    """A finite decimal number (a conversion metric takes only 0 or 1)."""
    try:
        if "_" in text:
            raise ValueError
        number = float(text)
    except ValueError:
        raise invalid_field(field, f"{text!r} is not a number") from None
    if not math.isfinite(number) or abs(number) > MAX_ABS_VALUE:
        raise invalid_field(field, f"must be finite and at most {MAX_ABS_VALUE:g} in absolute value")
    if conversion and number not in (0.0, 1.0):
        raise invalid_field(field, "a conversion (proportion) metric takes 0 or 1")
    return number


def _split_csv_line(raw: bytes, line: int) -> list[str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid_field(f"line {line}", "is not valid UTF-8") from None
    if '"' not in text:
        return text.split(",")
    try:
        return next(csv.reader([text], strict=True))
    except csv.Error as exc:
        raise invalid_field(f"line {line}", f"badly quoted field ({exc})") from None


def parse_csv_header(raw: bytes) -> bool:
    """Check the header line; returns whether the file carries a covariate column."""
    names = tuple(name.strip() for name in _split_csv_line(raw.removeprefix(b"\xef\xbb\xbf").rstrip(b"\r"), 1))
    if names not in CSV_HEADERS:
        raise invalid_field("line 1", "the header must be `unit,value` or `unit,value,covariate`")
    return CSV_HEADERS[names]


def parse_csv_rows(lines: Sequence[bytes], first_line: int, *, covariate: bool, conversion: bool) -> list[StagedRow]:
    """Parse and validate a batch of data lines (in a worker thread); errors name line and column."""
    columns = 3 if covariate else 2
    rows: list[StagedRow] = []
    for offset, raw in enumerate(lines):
        line = first_line + offset
        if not raw.strip():
            raise invalid_field(f"line {line}", "is blank; only the end of the file may hold blank lines")
        fields = _split_csv_line(raw.rstrip(b"\r"), line)
        if len(fields) != columns:
            raise invalid_field(f"line {line}", f"has {len(fields)} columns; the header names {columns}")
        unit = fields[0]
        if (reason := unit_problem(unit)) is not None:
            raise invalid_field(f"line {line}, column unit", f"unit id {reason}")
        value = parse_number(fields[1], f"line {line}, column value", conversion=conversion)
        pre = parse_number(fields[2], f"line {line}, column covariate", conversion=False) if covariate else None
        rows.append((line, unit, value, pre))
    return rows


def decode_upload(body: bytes, *, conversion: bool) -> list[StagedRow]:
    """A JSON body as staged rows (index as the line number), naming the offending path on failure."""
    upload = decode_json_body(body, OutcomesUpload)
    with_covariate = upload.outcomes[0].covariate is not None
    rows: list[StagedRow] = []
    for index, item in enumerate(upload.outcomes):
        field = f"outcomes[{index}]"
        if (reason := unit_problem(item.unit)) is not None:
            raise invalid_field(f"{field}.unit", reason)
        if conversion and item.value not in (0.0, 1.0):
            raise invalid_field(f"{field}.value", "a conversion (proportion) metric takes 0 or 1")
        if (item.covariate is not None) != with_covariate:
            raise invalid_field(f"{field}.covariate", "send a covariate for every outcome of a call or for none")
        rows.append((index, item.unit, item.value, item.covariate))
    return rows


async def csv_batches(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[bytes | None, int, list[bytes]]]:
    """Split a byte stream into lines: yields (header line or None, first line number, data lines)."""
    header_seen = False
    async for first, lines in line_batches(chunks, batch_lines=CSV_BATCH_ROWS, max_line_bytes=MAX_CSV_LINE_BYTES):
        if not header_seen:
            header_seen = True
            yield lines.pop(0), 1, []
            first += 1
        if lines:
            yield None, first, lines
    if not header_seen:
        raise invalid_field("line 1", "the body is empty; send the header `unit,value[,covariate]` then one row a line")


# --- storage --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutcomeTarget:
    experiment_id: UUID
    conversion: bool  # proportion metric: values are 0 or 1


async def open_target(connection: Connection, experiment_id: UUID) -> OutcomeTarget:
    """Lock the experiment (shared) and check it takes unit-level outcomes."""
    row = await lock_for_results_data(connection, experiment_id, "outcomes")
    return OutcomeTarget(experiment_id, row["design"]["metric"]["kind"] == "proportion")


class _Stager:
    """COPY batches of parsed rows into the transaction's staging table."""

    def __init__(self, connection: Connection) -> None:
        self.repository = OutcomeRepository(connection)
        self.rows = 0
        self.ready = False

    async def add(self, rows: Iterable[StagedRow]) -> None:
        if not self.ready:
            await self.repository.create_staging()
            self.ready = True
        self.rows += await self.repository.stage(rows)

    async def commit_rows(self, target: OutcomeTarget, *, json_body: bool) -> OutcomesAccepted:
        """Refuse repeated units, report unassigned ones, then upsert everything staged."""
        repeat = await self.repository.first_repeat()
        if repeat is not None:
            where = f"outcomes[{repeat['last_line']}].unit" if json_body else f"line {repeat['last_line']}, column unit"
            earlier = f"outcomes[{repeat['first_line']}]" if json_body else f"line {repeat['first_line']}"
            raise invalid_field(where, f"unit {repeat['unit']!r} already has an outcome in this upload ({earlier})")
        unassigned = await self.repository.unassigned(target.experiment_id, MAX_UNASSIGNED_EXAMPLES)
        written = await self.repository.upsert_staged(target.experiment_id)
        await bump_data_revision(self.repository.connection, target.experiment_id)
        return OutcomesAccepted(
            experiment_id=str(target.experiment_id),
            received=self.rows,
            inserted=int(written["inserted"]),
            replaced=int(written["replaced"]),
            unassigned=int(unassigned["units"]),
            unassigned_examples=list(unassigned["examples"] or []),
        )


async def store_json_outcomes(pool: asyncpg.Pool, experiment_id: UUID, body: bytes) -> OutcomesAccepted:
    """Store up to 10,000 outcomes sent as JSON; all or nothing."""
    async with pool.acquire() as connection, connection.transaction():
        target = await open_target(connection, experiment_id)
        rows = decode_upload(body, conversion=target.conversion)
        stager = _Stager(connection)
        await stager.add(rows)
        accepted = await stager.commit_rows(target, json_body=True)
        await _record_outcomes(connection, experiment_id, "json", accepted)
    await OutcomeRepository.refresh_statistics(pool, accepted.inserted)
    return accepted


async def store_csv_outcomes(pool: asyncpg.Pool, experiment_id: UUID, chunks: AsyncIterator[bytes]) -> OutcomesAccepted:
    """Stream a CSV of outcomes into the experiment in one transaction; all rows are stored or none."""
    async with pool.acquire() as connection, connection.transaction():
        target = await open_target(connection, experiment_id)
        stager = _Stager(connection)
        covariate = False
        async for header, first, lines in csv_batches(chunks):
            if header is not None:
                covariate = parse_csv_header(header)
                continue
            rows = await anyio.to_thread.run_sync(
                partial(parse_csv_rows, lines, first, covariate=covariate, conversion=target.conversion)
            )
            await stager.add(rows)
        if stager.rows == 0:
            raise invalid_field("line 2", "no outcome rows after the header")
        accepted = await stager.commit_rows(target, json_body=False)
        await _record_outcomes(connection, experiment_id, "csv", accepted)
    await OutcomeRepository.refresh_statistics(pool, accepted.inserted)
    return accepted


async def _record_outcomes(
    connection: Connection, experiment_id: UUID, source: str, accepted: OutcomesAccepted
) -> None:
    counts = {"received": accepted.received, "inserted": accepted.inserted, "replaced": accepted.replaced}
    await audit.record(
        connection, experiment_id, "outcomes_stored", {"source": source, **counts, "unassigned": accepted.unassigned}
    )


# --- spend ----------------------------------------------------------------------------------------


async def store_spend(pool: asyncpg.Pool, experiment_id: UUID, upload: SpendUpload) -> SpendAccepted:
    """Replace the spend (and value per conversion) of each channel sent; all or nothing."""
    async with pool.acquire() as connection, connection.transaction():
        row = await lock_holdout_experiment(
            connection,
            experiment_id,
            "Channel spend is for holdout experiments; a geo experiment carries its spend itself",
        )
        conversion = row["design"]["metric"]["kind"] == "proportion"
        positions = {r["name"]: r["position"] for r in await ExperimentRepository(connection).channels(experiment_id)}
        problems: list[tuple[str, str]] = []
        seen: set[str] = set()
        for index, item in enumerate(upload.channels):
            if item.channel not in positions:
                problems.append(
                    (f"channels[{index}].channel", f"not a channel of this experiment ({', '.join(positions)})")
                )
            elif item.channel in seen:
                problems.append((f"channels[{index}].channel", f"{item.channel} is sent twice"))
            if item.value_per_conversion is not None and not conversion:
                problems.append(
                    (f"channels[{index}].value_per_conversion", "only for proportion metrics; a mean is already value")
                )
            seen.add(item.channel)
        if problems:
            raise InvalidInput("; ".join(f"{field}: {reason}" for field, reason in problems), problems)
        await OutcomeRepository(connection).upsert_spend(
            experiment_id,
            [positions[c.channel] for c in upload.channels],
            [c.spend for c in upload.channels],
            [c.value_per_conversion for c in upload.channels],
        )
        await bump_data_revision(connection, experiment_id)
        await audit.record(
            connection,
            experiment_id,
            "spend_stored",
            {"channels": [{"channel": c.channel, "spend": c.spend} for c in upload.channels]},
        )
    return SpendAccepted(experiment_id=str(experiment_id), channels=list(upload.channels))
