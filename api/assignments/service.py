"""Rules of the assignments resource: validate unit ids, hash them off the event loop, store once.

A unit's arm in a channel is ``stats.assignment_hash`` of (experiment salt, channel name, unit id) by the
experiment's assignment rule (``sha256`` or ``blake2b``): the same on every call and every replica. The
first call stores it with its timestamp; later calls read the stored arm back (``INSERT … ON CONFLICT DO
NOTHING`` then ``SELECT``), so what was recorded is what is served, forever.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import anyio.to_thread
import asyncpg

from api.assignments.repository import AssignmentRepository, Row
from api.assignments.schemas import (
    MAX_UNIT_LENGTH,
    ArmCount,
    AssignmentBatch,
    AssignmentPage,
    AssignmentRequest,
    AssignmentSummary,
    BulkAssignmentResult,
    ChannelSummary,
    UnitAssignment,
)
from api.audit import service as audit
from api.db.database import Connection
from api.experiments.repository import ExperimentRepository
from api.experiments.revisions import bump_data_revision
from api.http.csv_cells import spreadsheet_safe
from api.http.errors import Conflict, InvalidInput, NotFound, invalid_field
from api.http.request_bodies import decode_json_body, line_batches
from stats.assignment_hash import ARM_NAMES, assign_channels_by_rule, holdout_masks
from stats.srm import SRM_THRESHOLD, sample_ratio_mismatch

CSV_BATCH_UNITS = 50_000
COPY_PIECE_ROWS = 1_000  # about 80 kB of COPY text
MAX_CSV_LINE_BYTES = 2048  # a 256-character unit id (at most 1,024 bytes), quoted with every quote doubled, fits
CSV_HEADER = "unit"
_FORBIDDEN = ("\x00", "\r", "\n")


@dataclass(frozen=True)
class HoldoutDesign:
    """What assignment needs to know about an experiment."""

    experiment_id: UUID
    status: str
    salt: str
    channels: tuple[tuple[str, float], ...]  # (name, holdout_fraction) by position
    rule: str  # the experiment's assignment rule: a name in stats.assignment_hash.RULES


# --- unit ids -------------------------------------------------------------------------------------


def unit_problem(unit: str) -> str | None:
    """Why ``unit`` cannot be a unit id, or ``None`` when it can."""
    if not unit:
        return "is empty"
    try:
        unit.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    if len(unit) > MAX_UNIT_LENGTH:
        return f"is {len(unit)} characters long; at most {MAX_UNIT_LENGTH} are allowed"
    if any(c in unit for c in _FORBIDDEN):
        return "contains NUL, carriage return or line feed"
    return None


def validate_units(units: Sequence[str]) -> None:
    """400 naming every offending ``units[i]`` (up to 20)."""
    problems = [(f"units[{i}]", reason) for i, unit in enumerate(units) if (reason := unit_problem(unit))]
    if problems:
        raise InvalidInput("; ".join(f"{name}: {reason}" for name, reason in problems[:20]), problems[:20])


def decode_request(body: bytes) -> AssignmentRequest:
    """Decode and validate a JSON body, naming the offending path on failure."""
    request = decode_json_body(body, AssignmentRequest)
    validate_units(request.units)
    return request


def parse_csv_line(raw: bytes, line_number: int) -> str:
    """One data line of the single-column CSV (``\\r\\n`` or ``\\n`` already split off)."""
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    if raw.startswith(b'"'):
        inner = raw[1:-1]
        if len(raw) < 2 or not raw.endswith(b'"') or b'"' in inner.replace(b'""', b""):
            raise invalid_field(f"line {line_number}", "badly quoted field")
        raw = inner.replace(b'""', b'"')
    elif b"," in raw:
        raise invalid_field(f"line {line_number}", "has more than one column; quote a unit id containing a comma")
    try:
        unit = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise invalid_field(f"line {line_number}", "is not valid UTF-8") from exc
    if (reason := unit_problem(unit)) is not None:
        raise invalid_field(f"line {line_number}", f"unit id {reason}")
    return unit


def check_csv_header(raw: bytes) -> None:
    header = raw.removeprefix(b"\xef\xbb\xbf").rstrip(b"\r").strip()
    if header.strip(b'"') != CSV_HEADER.encode():
        raise invalid_field("line 1", f"the header must be `{CSV_HEADER}`")


# --- experiments ----------------------------------------------------------------------------------


async def load_design(connection: Connection, experiment_id: UUID, *, for_write: bool) -> HoldoutDesign:
    """The holdout design of an experiment: 404 when unknown, 409 when geo (or stopped, for writes)."""
    experiments = ExperimentRepository(connection)
    row = await (experiments.get_for_share(experiment_id) if for_write else experiments.get(experiment_id))
    if row is None:
        raise NotFound(f"No experiment with id {experiment_id}")
    if row["kind"] != "holdout":
        raise Conflict(f"Experiment {experiment_id} is a geo experiment: it assigns markets, not units")
    if for_write and row["status"] == "stopped":
        raise Conflict(f"Experiment {experiment_id} is stopped: no new units can be assigned")
    channels = tuple((c["name"], float(c["holdout_fraction"])) for c in await experiments.channels(experiment_id))
    return HoldoutDesign(experiment_id, row["status"], row["salt"], channels, row["assignment_rule"])


def compute_masks(design: HoldoutDesign, units: Sequence[str]) -> list[int]:
    """Holdout masks (bit k = holdout in channel k) of ``units``: CPU-bound, run it in a thread."""
    arms = assign_channels_by_rule(design.rule, design.salt, design.channels, units)
    masks: list[int] = holdout_masks(arms).tolist()
    return masks


def unit_assignment(
    design: HoldoutDesign, unit: str, positions: Sequence[int], arms: Sequence[int], at: Any
) -> UnitAssignment:
    names = design.channels
    mapped = {names[p][0]: ARM_NAMES[a] for p, a in zip(positions, arms, strict=True) if p < len(names)}
    return UnitAssignment(unit=unit, arms=mapped, assigned_at=at)  # type: ignore[arg-type]


def _from_row(design: HoldoutDesign, row: Row) -> UnitAssignment:
    return unit_assignment(design, row["unit"], row["positions"], row["arms"], row["assigned_at"])


# --- operations -----------------------------------------------------------------------------------


async def assign_units(pool: asyncpg.Pool, experiment_id: UUID, units: Sequence[str]) -> AssignmentBatch:
    """Assign ``units`` (already validated) in one transaction and return their stored arms."""
    unique = list(dict.fromkeys(units))
    async with pool.acquire() as connection, connection.transaction():
        design = await load_design(connection, experiment_id, for_write=True)
        masks = await anyio.to_thread.run_sync(compute_masks, design, unique)
        repository = AssignmentRepository(connection)
        if await repository.insert(experiment_id, unique, masks, len(design.channels)):
            await bump_data_revision(connection, experiment_id)
        rows = {row["unit"]: row for row in await repository.select_units(experiment_id, unique)}
        await audit.record(connection, experiment_id, "assignments_loaded", {"source": "json", "units": len(unique)})
    return AssignmentBatch(experiment_id=experiment_id, assignments=[_from_row(design, rows[unit]) for unit in unique])


async def get_unit(pool: asyncpg.Pool, experiment_id: UUID, unit: str, *, assign: bool) -> UnitAssignment:
    """One unit's stored arms; 404 when never assigned, unless ``assign`` asks to assign it now."""
    if (reason := unit_problem(unit)) is not None:
        raise invalid_field("unit", reason)
    async with pool.acquire() as connection:
        row = await AssignmentRepository(connection).select_unit_with_design(experiment_id, unit)
    if row is None:
        raise NotFound(f"No experiment with id {experiment_id}")
    if row["kind"] != "holdout":
        raise Conflict(f"Experiment {experiment_id} is a geo experiment: it assigns markets, not units")
    if row["positions"] is not None:
        channels = tuple(zip(row["channel_names"] or [], row["holdout_fractions"] or [], strict=True))
        design = HoldoutDesign(experiment_id, row["status"], row["salt"], channels, row["assignment_rule"])
        return unit_assignment(design, unit, row["positions"], row["arms"], row["assigned_at"])
    if not assign:
        raise NotFound(
            f"Unit {unit!r} has not been assigned in experiment {experiment_id}; pass assign=true to assign it"
        )
    return (await assign_units(pool, experiment_id, [unit])).assignments[0]


async def _batches(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, list[bytes]]]:
    """Split a byte stream into lines; yield (number of the first line, lines) batches, header checked."""
    header_seen = False
    async for first, lines in line_batches(chunks, batch_lines=CSV_BATCH_UNITS, max_line_bytes=MAX_CSV_LINE_BYTES):
        if not header_seen:
            check_csv_header(lines.pop(0))
            header_seen = True
            first += 1
        if lines:
            yield first, lines
    if not header_seen:
        raise invalid_field("line 1", f"the body is empty; send the header `{CSV_HEADER}` then one unit per line")


@dataclass(frozen=True)
class PreparedBatch:
    """One parsed, validated and hashed batch of CSV lines."""

    lines: int
    units: list[str]  # repeats within the batch removed, first occurrence kept
    masks: list[int]  # holdout mask per unit (bit k = holdout in channel k)
    copy_data: list[bytes]  # the assignment rows in COPY's text format, in pieces, for a direct COPY


def parse_csv_units(first: int, lines: list[bytes]) -> list[str]:
    """The unit ids of a batch of data lines (the first numbered ``first``), checked as :func:`parse_csv_line`.

    A batch of plain ids (no quote, comma, NUL or lone carriage return; valid UTF-8; 1 to 256 characters each)
    is decoded, split and measured in one pass of C code each; any other batch goes line by line, which
    names the offending line. The checks were half the time of a bulk upload when run line by line.
    """
    try:
        text = (b"\n".join(lines) + b"\n").decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    if text and not any(c in text for c in ('"', ",", "\x00", "\r")):
        units = text[:-1].split("\n")
        if len(units) == len(lines) and min(map(len, units)) >= 1 and max(map(len, units)) <= MAX_UNIT_LENGTH:
            return units
    return [parse_csv_line(raw, first + offset) for offset, raw in enumerate(lines)]


_COPY_TEXT_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t"})


def copy_text(experiment_id: UUID, units: list[str], arms: Any, assigned_at: datetime) -> list[bytes]:
    """The assignment rows of ``units`` (``arms``: one row of 0/1 per channel position) in ``COPY``'s text
    format: built as strings and sent as they are, not as 2,000,000 tuples for the driver to encode one by one
    (which took as long as the COPY itself). In pieces of :data:`COPY_PIECE_ROWS` rows: buffers of megabytes,
    freed from another thread, made the allocator keep growing the process upload after upload."""
    joined = "".join(units)
    if "\\" in joined or "\t" in joined:
        units = [unit.translate(_COPY_TEXT_ESCAPES) for unit in units]
    head = f"{experiment_id}\t"
    stamp = assigned_at.isoformat(sep=" ")
    pieces: list[bytes] = []
    for position, channel_arms in enumerate(arms):
        tails = (f"\t{position}\t0\t{stamp}\n", f"\t{position}\t1\t{stamp}\n")
        rows = [head + unit + tails[arm] for unit, arm in zip(units, channel_arms.tolist(), strict=True)]
        pieces.extend("".join(rows[i : i + COPY_PIECE_ROWS]).encode() for i in range(0, len(rows), COPY_PIECE_ROWS))
    return pieces


def _prepare_batch(design: HoldoutDesign, first: int, lines: list[bytes], assigned_at: datetime) -> PreparedBatch:
    """Parse, validate and hash one batch of CSV lines (in a worker thread)."""
    units = list(dict.fromkeys(parse_csv_units(first, lines)))
    arms = assign_channels_by_rule(design.rule, design.salt, design.channels, units)
    rows = copy_text(design.experiment_id, units, arms, assigned_at)
    return PreparedBatch(len(lines), units, holdout_masks(arms).tolist(), rows)


class _BulkWriter:
    """Writes prepared batches: a direct COPY while the units are new, staging + ON CONFLICT after.

    The direct ``COPY`` into ``assignments`` runs in a savepoint; the first unique violation (a unit
    already assigned, or repeated across batches) rolls that batch back and switches to the general
    path for the rest of the upload: ``COPY`` into a temporary staging table, then
    ``INSERT … SELECT … ON CONFLICT DO NOTHING``.
    """

    def __init__(self, repository: AssignmentRepository, design: HoldoutDesign) -> None:
        self.repository = repository
        self.design = design
        self.direct = True
        self.staging_ready = False
        self.inserted = 0

    async def write(self, batch: PreparedBatch) -> None:
        if self.direct:
            try:
                async with self.repository.connection.transaction():
                    self.inserted += await self.repository.copy_text(batch.copy_data)
                    return
            except asyncpg.UniqueViolationError:
                self.direct = False
        if not self.staging_ready:
            await self.repository.create_staging()
            self.staging_ready = True
        await self.repository.stage(zip(batch.units, batch.masks, strict=True))
        self.inserted += await self.repository.insert_staged(self.design.experiment_id, len(self.design.channels))


async def bulk_assign(pool: asyncpg.Pool, experiment_id: UUID, chunks: AsyncIterator[bytes]) -> BulkAssignmentResult:
    """Stream a CSV of units into the experiment in ONE transaction: all lines are stored, or none.

    Each batch is parsed and hashed in a worker thread while the previous one is being written (see
    :class:`_BulkWriter`); units already assigned, or repeated, are skipped. Every row carries the
    transaction's timestamp as ``assigned_at``. Once committed, a load that grew the table by a tenth or more
    refreshes its statistics (``VACUUM ANALYZE``) before answering, so that the experiment's next reads are
    planned for its rows.
    """
    received = 0
    async with pool.acquire() as connection, connection.transaction():
        design = await load_design(connection, experiment_id, for_write=True)
        repository = AssignmentRepository(connection)
        assigned_at = await repository.begin_bulk()
        writer = _BulkWriter(repository, design)
        pending: asyncio.Task[None] | None = None
        try:
            async for first, lines in _batches(chunks):
                batch = await anyio.to_thread.run_sync(_prepare_batch, design, first, lines, assigned_at)
                received += batch.lines
                if pending is not None:
                    await pending
                pending = asyncio.create_task(writer.write(batch))
            if pending is not None:
                await pending
                pending = None
        finally:
            if pending is not None:
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)
        inserted = writer.inserted
        if inserted:
            await bump_data_revision(connection, experiment_id)
        assigned = inserted // max(len(design.channels), 1)
        await audit.record(
            connection,
            experiment_id,
            "assignments_loaded",
            {"source": "csv", "units_received": received, "units_assigned": assigned},
        )
    await AssignmentRepository.refresh_statistics(pool, inserted)
    return BulkAssignmentResult(
        experiment_id=experiment_id,
        units_received=received,
        units_assigned=assigned,
        units_skipped=received - assigned,
        channels=len(design.channels),
        rows_inserted=inserted,
    )


async def summarize(pool: asyncpg.Pool, experiment_id: UUID) -> AssignmentSummary:
    """Arm counts per channel against the planned split, with a chi-square SRM test each."""
    async with pool.acquire() as connection:
        design = await load_design(connection, experiment_id, for_write=False)
        counts = await AssignmentRepository(connection).counts(experiment_id)
    observed = {(row["position"], row["arm"]): int(row["units"]) for row in counts}
    channels = []
    for position, (name, fraction) in enumerate(design.channels):
        treatment, holdout = observed.get((position, 0), 0), observed.get((position, 1), 0)
        total = treatment + holdout
        statistic = p_value = None
        flagged = False
        if total > 0:
            srm = sample_ratio_mismatch([treatment, holdout], [1.0 - fraction, fraction])
            statistic, p_value, flagged = srm.statistic, srm.p_value, srm.flagged
        channels.append(
            ChannelSummary(
                channel=name,
                holdout_fraction=fraction,
                units=total,
                treatment=ArmCount(observed=treatment, expected=total * (1.0 - fraction)),
                holdout=ArmCount(observed=holdout, expected=total * fraction),
                srm_statistic=statistic,
                srm_p_value=p_value,
                srm_flagged=flagged,
            )
        )
    return AssignmentSummary(
        experiment_id=experiment_id,
        srm_threshold=SRM_THRESHOLD,
        srm_flagged=any(c.srm_flagged for c in channels),
        channels=channels,
    )


def encode_cursor(unit: str) -> str:
    return base64.urlsafe_b64encode(unit.encode("utf-8")).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid_field("cursor", "is not a cursor this service issued") from exc


async def list_page(pool: asyncpg.Pool, experiment_id: UUID, cursor: str | None, limit: int) -> AssignmentPage:
    after = decode_cursor(cursor) if cursor else None
    async with pool.acquire() as connection:
        design = await load_design(connection, experiment_id, for_write=False)
        rows = await AssignmentRepository(connection).page(experiment_id, after, limit + 1)
    has_more = len(rows) > limit
    rows = rows[:limit]
    return AssignmentPage(
        items=[_from_row(design, row) for row in rows],
        next_cursor=encode_cursor(rows[-1]["unit"]) if has_more else None,
    )


async def open_export(pool: asyncpg.Pool, experiment_id: UUID) -> HoldoutDesign:
    """Check the experiment before a CSV export starts streaming (so a 404 is still possible)."""
    async with pool.acquire() as connection:
        return await load_design(connection, experiment_id, for_write=False)


async def export_csv(pool: asyncpg.Pool, design: HoldoutDesign, rows_per_chunk: int = 5_000) -> AsyncIterator[bytes]:
    """CSV lines ``unit,<channel>…,assigned_at`` in unit order, read through a server-side cursor; text that a
    spreadsheet would take for a formula is prefixed with ``'`` (:mod:`api.http.csv_cells`)."""
    names = [name for name, _ in design.channels]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["unit", *map(spreadsheet_safe, names), "assigned_at"])
    async with pool.acquire() as connection, connection.transaction(readonly=True, isolation="repeatable_read"):
        count = 0
        async for row in AssignmentRepository(connection).iterate(design.experiment_id):
            arms = [""] * len(names)
            for position, arm in zip(row["positions"], row["arms"], strict=True):
                if position < len(names):
                    arms[position] = ARM_NAMES[arm]
            writer.writerow([spreadsheet_safe(row["unit"]), *arms, row["assigned_at"].isoformat()])
            count += 1
            if count % rows_per_chunk == 0:
                yield out.getvalue().encode("utf-8")
                out.seek(0)
                out.truncate()
    if out.tell():
        yield out.getvalue().encode("utf-8")
