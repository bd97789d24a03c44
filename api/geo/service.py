"""Geo datasets: parse an uploaded panel (CSV or JSON), check it, assess its quality and store it.

A CSV upload is read as it streams in, in blocks of whole lines. Each block is parsed column-wise with
numpy (newline and comma positions, fixed-width byte columns, vectorized date and number conversion),
off the event loop; only a block holding a double quote goes through the ``csv`` module. Errors name
the line and column (``line 13, column kpi``); JSON errors name the row (``rows[12].kpi``).

The rows are written with ``COPY`` in the transaction that inserts the dataset row, in chunks whose
records are built in a worker thread while the previous chunk is copied; any error rolls it all back.
"""

from __future__ import annotations

import asyncio
import csv
import io
import math
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import date
from uuid import UUID

import asyncpg
import msgspec
import numpy as np
import numpy.typing as npt

from api.audit import service as audit
from api.auth.caller import current_key_id
from api.database import Connection
from api.errors import InvalidInput, NotFound, invalid_field
from api.geo.binary_copy import encode_observations
from api.geo.repository import GeoRepository, Row
from api.geo.schemas import (
    MAX_PANEL_VALUE,
    DataQuality,
    GeoDataset,
    GeoDatasetUpload,
    GeoObservation,
    GeoSeries,
    MissingDates,
    Outlier,
    ZeroRun,
)
from stats.panel_quality import PanelQuality, assess_panel, pivot_long_to_panel

REQUIRED_COLUMNS = ("date", "geo", "kpi")
OPTIONAL_COLUMNS = ("spend",)
BLOCK_BYTES = 1024 * 1024
MAX_LINE_BYTES = 64 * 1024  # no panel row comes near this; a longer one is not CSV we can read
COPY_CHUNK_ROWS = 100_000
LISTED_FINDINGS = 1000
MAX_PANEL_CELLS = 10_000_000
MAX_GEO_BYTES = 200
DEFAULT_NAME = "Geo panel"

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
DayArray = npt.NDArray[np.datetime64]
Locate = Callable[[int, str], str]


def _line_locator(row: int, column: str) -> str:
    return f"line {row + 2}, column {column}"


def _json_locator(row: int, column: str) -> str:
    return f"rows[{row}].{column}"


TOO_LARGE = "must be at most 1e+100 (the analyses square and sum the values)"


def _refuse(name: str, reason: str) -> InvalidInput:
    return invalid_field(name, reason)


@dataclass(frozen=True)
class LongPanel:
    """A panel as columns: market code per row (into ``geos``), day, KPI and spend (NaN: none)."""

    geos: list[str]
    codes: IntArray
    days: DayArray
    kpi: FloatArray
    spend: FloatArray | None
    locate: Locate


# ---------------------------------------------------------------------------------------------------
# CSV parsing


# Headers as the tools marketers use write them: GeoLift's `location,Y,date`, Google's trimmed_match and
# matched_markets `date,geo,response,cost` / `sales`.
COLUMN_ALIASES = {"location": "geo", "y": "kpi", "response": "kpi", "sales": "kpi", "cost": "spend"}
MIDNIGHT = np.frombuffer(b"00:00:00", dtype=np.uint8)


class CsvPanelParser:
    """Parses a CSV panel block by block (each block ends at a line end); :meth:`finish` gives the columns."""

    def __init__(self) -> None:
        self.columns: list[str] | None = None
        self.rows_done = 0
        self.geo_index: dict[str, int] = {}
        self.codes: list[IntArray] = []
        self.days: list[DayArray] = []
        self.kpi: list[FloatArray] = []
        self.spend: list[FloatArray] = []

    # -- header ---------------------------------------------------------------------------------
    def _read_header(self, block: bytes) -> bytes:
        end = block.find(b"\n")
        line, rest = (block, b"") if end < 0 else (block[:end], block[end + 1 :])
        try:
            text = line.decode("utf-8-sig").strip()
        except UnicodeDecodeError as exc:
            raise _refuse("line 1", "the header is not UTF-8 text") from exc
        names = [name.strip().strip('"').strip().lower() for name in text.split(",")]
        names = [COLUMN_ALIASES.get(name, name) for name in names]
        expected = (
            "expected the columns date, geo, kpi and optionally spend (also read: "
            + ", ".join(f"{alias} as {name}" for alias, name in COLUMN_ALIASES.items())
            + ")"
        )
        unknown = [name for name in names if name not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
        if unknown:
            raise _refuse("line 1", f"unknown column {unknown[0]!r}; {expected}")
        if len(set(names)) != len(names):
            raise _refuse("line 1", f"a column is named twice; {expected}")
        missing = [name for name in REQUIRED_COLUMNS if name not in names]
        if missing:
            raise _refuse("line 1", f"no column {missing[0]!r}; {expected}")
        self.columns = names
        return rest

    # -- blocks ---------------------------------------------------------------------------------
    def parse_block(self, block: bytes) -> None:
        """Parse whole lines (``block`` ends with a newline, or is the header's block)."""
        if self.columns is None:
            block = self._read_header(block)
        if not block:
            return
        if b'"' in block:
            fields, lengths = self._split_with_csv(block)
        else:
            fields, lengths = self._split_with_numpy(block)
        self._convert(fields, lengths)

    def _split_with_numpy(self, block: bytes) -> tuple[dict[str, np.ndarray], dict[str, IntArray]]:
        assert self.columns is not None
        buf = np.frombuffer(block, dtype=np.uint8)
        newlines = np.flatnonzero(buf == 10)
        n = newlines.size
        starts = np.empty(n, dtype=np.int64)
        starts[0] = 0
        starts[1:] = newlines[:-1] + 1
        ends = newlines.astype(np.int64)
        carriage = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == 13)
        ends[carriage] -= 1
        commas = np.flatnonzero(buf == 44)
        separators = len(self.columns) - 1
        per_line = np.diff(np.searchsorted(commas, newlines), prepend=0)
        wrong = np.flatnonzero(per_line != separators)
        if wrong.size:
            row = int(wrong[0])
            found = int(per_line[row]) + 1 if ends[row] > starts[row] else 0
            raise _refuse(
                f"line {self.rows_done + row + 2}",
                f"expected {len(self.columns)} columns ({', '.join(self.columns)}), found {found}",
            )
        cuts = commas.reshape(n, separators)
        fields: dict[str, np.ndarray] = {}
        lengths: dict[str, IntArray] = {}
        for j, name in enumerate(self.columns):
            first = starts if j == 0 else cuts[:, j - 1] + 1
            last = ends if j == separators else cuts[:, j]
            fields[name], lengths[name] = _gather(buf, first, last)
        return fields, lengths

    def _split_with_csv(self, block: bytes) -> tuple[dict[str, np.ndarray], dict[str, IntArray]]:
        assert self.columns is not None
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = self.rows_done + block[: exc.start].count(b"\n") + 2
            raise _refuse(f"line {line}", "is not UTF-8 text") from exc
        rows = list(csv.reader(io.StringIO(text, newline="")))
        width = len(self.columns)
        for i, row in enumerate(rows):
            if len(row) != width:
                raise _refuse(
                    f"line {self.rows_done + i + 2}",
                    f"expected {width} columns ({', '.join(self.columns)}), found {len(row)}",
                )
        fields: dict[str, np.ndarray] = {}
        lengths: dict[str, IntArray] = {}
        for j, name in enumerate(self.columns):
            encoded = [row[j].encode("utf-8") for row in rows]
            fields[name] = np.array(encoded, dtype=np.bytes_)
            lengths[name] = np.fromiter((len(v) for v in encoded), dtype=np.int64, count=len(encoded))
        return fields, lengths

    # -- conversion -----------------------------------------------------------------------------
    def _error(self, row: int, column: str, reason: str) -> InvalidInput:
        return _refuse(_line_locator(self.rows_done + row, column), reason)

    def _convert(self, fields: dict[str, np.ndarray], lengths: dict[str, IntArray]) -> None:
        n = len(fields["date"])
        days = self._dates(fields["date"], lengths["date"])
        kpi = self._numbers(fields["kpi"], lengths["kpi"], "kpi", allow_empty=False)
        spend = (
            self._numbers(fields["spend"], lengths["spend"], "spend", allow_empty=True) if "spend" in fields else None
        )
        codes = self._geos(fields["geo"], lengths["geo"])
        self.codes.append(codes)
        self.days.append(days)
        self.kpi.append(kpi)
        if spend is not None:
            self.spend.append(spend)
        self.rows_done += n

    def _dates(self, column: np.ndarray, length: IntArray) -> DayArray:
        """``YYYY-MM-DD``, or with a midnight time as some tools write it (``2020-01-01T00:00:00``)."""
        n = column.size
        width = max(column.dtype.itemsize, 19)
        raw = np.zeros((n, width), dtype=np.uint8)
        if column.dtype.itemsize:
            raw[:, : column.dtype.itemsize] = np.frombuffer(column.tobytes(), dtype=np.uint8).reshape(
                n, column.dtype.itemsize
            )
        midnight = (length == 19) & ((raw[:, 10] == 84) | (raw[:, 10] == 32)) & (raw[:, 11:19] == MIDNIGHT).all(axis=1)
        ok = ((length == 10) | midnight) & (raw[:, 4] == 45) & (raw[:, 7] == 45)
        digit = {k: raw[:, k] - np.uint8(48) for k in (0, 1, 2, 3, 5, 6, 8, 9)}  # wraps above 9 if not a digit
        for values in digit.values():
            ok &= values <= 9
        year = digit[0].astype(np.int32) * 1000 + digit[1].astype(np.int32) * 100 + digit[2] * np.int32(10) + digit[3]
        month = digit[5].astype(np.int32) * 10 + digit[6]
        day = digit[8].astype(np.int32) * 10 + digit[9]
        leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
        month_days = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int32)
        ok &= (month >= 1) & (month <= 12) & (year >= 1)
        last_day = month_days[np.where(ok, month, 0)] + ((month == 2) & leap)
        ok &= (day >= 1) & (day <= last_day)
        if not ok.all():
            row = int(np.flatnonzero(~ok)[0])
            shown = column[row].decode("utf-8", "replace")
            raise self._error(row, "date", f"{shown!r} is not a date (YYYY-MM-DD, or with a midnight time)")
        # Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
        y = year.astype(np.int64) - (month <= 2)
        era = np.floor_divide(y, 400)
        year_of_era = y - era * 400
        day_of_year = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
        day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
        days: DayArray = (era * 146097 + day_of_era - 719468).astype("datetime64[D]")
        return days

    def _numbers(self, column: np.ndarray, length: IntArray, name: str, *, allow_empty: bool) -> FloatArray:
        empty = length == 0
        values = np.full(column.size, np.nan)
        present = ~empty if allow_empty else np.ones(column.size, dtype=bool)
        try:
            values[present] = column[present].astype(np.float64)
        except ValueError:
            for row in np.flatnonzero(present).tolist():
                try:
                    float(column[row])
                except ValueError:
                    shown = column[row].decode("utf-8", "replace")
                    raise self._error(row, name, f"{shown!r} is not a number") from None
            raise  # pragma: no cover - numpy refused a value float() accepts
        bad = present & ~np.isfinite(values)
        if bad.any():
            raise self._error(int(np.flatnonzero(bad)[0]), name, "must be a finite number")
        negative = present & (values < 0)
        if negative.any():
            row = int(np.flatnonzero(negative)[0])
            raise self._error(row, name, f"must not be negative, got {values[row]:g}")
        huge = present & (values > MAX_PANEL_VALUE)
        if huge.any():
            row = int(np.flatnonzero(huge)[0])
            raise self._error(row, name, f"{TOO_LARGE}, got {values[row]:g}")
        return values

    def _geos(self, column: np.ndarray, length: IntArray) -> IntArray:
        if (length == 0).any():
            raise self._error(int(np.flatnonzero(length == 0)[0]), "geo", "must not be empty")
        if (length > MAX_GEO_BYTES).any():
            row = int(np.flatnonzero(length > MAX_GEO_BYTES)[0])
            raise self._error(row, "geo", f"is longer than {MAX_GEO_BYTES} bytes")
        labels, inverse = np.unique(column, return_inverse=True)
        local = np.empty(labels.size, dtype=np.int64)
        for k, label in enumerate(labels.tolist()):
            try:
                text = label.decode("utf-8")
            except UnicodeDecodeError:
                row = int(np.flatnonzero(inverse == k)[0])
                raise self._error(row, "geo", "is not UTF-8 text") from None
            if "\x00" in text:
                row = int(np.flatnonzero(inverse == k)[0])
                raise self._error(row, "geo", "must not contain a NUL character")
            local[k] = self.geo_index.setdefault(text, len(self.geo_index))
        codes: IntArray = local[inverse.reshape(-1)]
        return codes

    def finish(self) -> LongPanel:
        if self.columns is None:
            raise _refuse("line 1", "the body is empty; expected a header line date,geo,kpi[,spend]")
        geos = list(self.geo_index)
        empty_f = np.empty(0, dtype=np.float64)
        return LongPanel(
            geos=geos,
            codes=np.concatenate(self.codes) if self.codes else np.empty(0, dtype=np.int64),
            days=np.concatenate(self.days) if self.days else np.empty(0, dtype="datetime64[D]"),
            kpi=np.concatenate(self.kpi) if self.kpi else empty_f,
            spend=(np.concatenate(self.spend) if self.spend else empty_f) if "spend" in self.columns else None,
            locate=_line_locator,
        )


def _gather(buf: npt.NDArray[np.uint8], first: IntArray, last: IntArray) -> tuple[np.ndarray, IntArray]:
    """The byte fields ``buf[first[i]:last[i]]`` as a fixed-width ``S`` array, and their lengths."""
    length = (last - first).astype(np.int64)
    width = max(int(length.max()) if length.size else 0, 1)
    matrix = np.zeros((length.size, width), dtype=np.uint8)
    top = buf.size - 1
    for offset in range(width):
        inside = length > offset
        matrix[:, offset] = np.where(inside, buf[np.minimum(first + offset, top)], 0)
    return matrix.view(f"S{width}").reshape(-1), length


async def csv_blocks(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Re-cut a byte stream into blocks of whole lines of at most about ``BLOCK_BYTES`` each."""
    pending = bytearray()
    async for chunk in stream:
        if not chunk:
            continue
        pending += chunk
        while len(pending) >= BLOCK_BYTES:
            cut = pending.rfind(b"\n", 0, BLOCK_BYTES) + 1 or pending.find(b"\n", BLOCK_BYTES) + 1
            if not cut:
                if len(pending) > BLOCK_BYTES + MAX_LINE_BYTES:
                    raise invalid_field("body", f"has a line longer than {MAX_LINE_BYTES} bytes")
                break
            block = bytes(pending[:cut])
            del pending[:cut]
            yield block
    tail = bytes(pending).rstrip(b"\r\n\t ")
    if tail:
        yield tail + b"\n"


async def parse_csv_stream(stream: AsyncIterator[bytes]) -> LongPanel:
    """Parse a streamed CSV body block by block; each block is parsed in a worker thread."""
    parser = CsvPanelParser()
    async for block in csv_blocks(stream):
        await asyncio.to_thread(parser.parse_block, block)
    return parser.finish()


def panel_from_json(upload: GeoDatasetUpload) -> LongPanel:
    """Columns of a JSON upload (already type-checked by msgspec)."""
    rows = upload.rows
    index: dict[str, int] = {}
    codes = np.fromiter((index.setdefault(r.geo, len(index)) for r in rows), dtype=np.int64, count=len(rows))
    days = np.array([r.date for r in rows], dtype="datetime64[D]")
    kpi = np.fromiter((r.kpi for r in rows), dtype=np.float64, count=len(rows))
    has_spend = any(r.spend is not None for r in rows)
    spend = (
        np.fromiter((math.nan if r.spend is None else r.spend for r in rows), dtype=np.float64, count=len(rows))
        if has_spend
        else None
    )
    for name, values in (("kpi", kpi), ("spend", spend)):
        if values is not None and np.isinf(values).any():
            raise _refuse(_json_locator(int(np.flatnonzero(np.isinf(values))[0]), name), "must be a finite number")
    return LongPanel(geos=list(index), codes=codes, days=days, kpi=kpi, spend=spend, locate=_json_locator)


# ---------------------------------------------------------------------------------------------------
# Checks and quality


@dataclass(frozen=True)
class CheckedPanel:
    long: LongPanel
    geos: list[str]  # sorted
    first_date: date
    last_date: date
    step_days: int
    date_count: int
    quality: DataQuality


def check_panel(long: LongPanel) -> CheckedPanel:
    """Refuse fewer than 2 geos and repeated (geo, date); assess the panel on its regular date axis."""
    if len(long.geos) < 2:
        found = f"only {long.geos[0]!r}" if long.geos else "none"
        name = "rows" if long.locate is _json_locator else "column geo"
        raise _refuse(name, f"a geo panel needs at least 2 geos; found {found}")
    day_numbers = long.days.astype(np.int64)
    first, last = int(day_numbers.min()), int(day_numbers.max())
    distinct = np.unique(day_numbers)
    step = int(np.gcd.reduce(np.diff(distinct))) if distinct.size > 1 else 1
    date_count = (last - first) // step + 1
    if date_count * len(long.geos) > MAX_PANEL_CELLS:
        raise _refuse(
            long.locate(int(np.argmax(day_numbers)), "date"),
            f"the panel would span {date_count} dates x {len(long.geos)} geos; at most "
            f"{MAX_PANEL_CELLS:,} cells are accepted",
        )
    date_index = (day_numbers - first) // step
    key = long.codes * date_count + date_index
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    repeated = np.flatnonzero(ordered[1:] == ordered[:-1])
    if repeated.size:
        later = order[repeated + 1]
        pick = int(np.argmin(later))
        row, earlier = int(later[pick]), int(order[repeated[pick]])
        geo = long.geos[int(long.codes[row])]
        raise _refuse(
            long.locate(row, "date"),
            f"geo {geo!r} on {long.days[row]} appears twice (first at {long.locate(earlier, 'date')})",
        )
    # Rows of the matrix in sorted geo order.
    sorted_geos = sorted(long.geos)
    position = {g: i for i, g in enumerate(sorted_geos)}
    remap = np.array([position[g] for g in long.geos], dtype=np.int64)
    panel = pivot_long_to_panel(remap[long.codes], date_index, long.kpi, len(sorted_geos), date_count)
    axis = np.datetime64(first, "D") + np.arange(date_count) * step
    assessed = assess_panel(panel, sorted_geos, axis)
    return CheckedPanel(
        long=long,
        geos=sorted_geos,
        first_date=_to_date(np.datetime64(first, "D")),
        last_date=_to_date(np.datetime64(last, "D")),
        step_days=step,
        date_count=date_count,
        quality=_quality(assessed, step),
    )


def _to_date(value: np.datetime64) -> date:
    result: date = value.astype("datetime64[D]").item()
    return result


def _quality(found: PanelQuality, step: int) -> DataQuality:
    limit = LISTED_FINDINGS
    return DataQuality(
        date_step_days=step,
        total_missing=found.total_missing,
        missing_geo_count=len(found.missing),
        zero_run_count=len(found.zero_runs),
        outlier_count=len(found.outliers),
        listed_limit=limit,
        missing=[
            MissingDates(g.geo, g.missing_count, [_to_date(d) for d in g.first_missing]) for g in found.missing[:limit]
        ],
        zero_runs=[ZeroRun(z.geo, _to_date(z.start), _to_date(z.end), z.length) for z in found.zero_runs[:limit]],
        outliers=[Outlier(o.geo, _to_date(o.date), o.value, o.robust_z) for o in found.outliers[:limit]],
    )


# ---------------------------------------------------------------------------------------------------
# Storage


def _record_chunks(long: LongPanel) -> Iterator[tuple[int, int]]:
    n = long.codes.size
    for start in range(0, n, COPY_CHUNK_ROWS):
        yield start, min(n, start + COPY_CHUNK_ROWS)


def _payload(dataset_id: UUID, long: LongPanel, labels: list[bytes], start: int, stop: int) -> bytes:
    """Rows ``start:stop`` as a binary COPY payload (worker thread)."""
    spend = None if long.spend is None else long.spend[start:stop]
    return encode_observations(
        dataset_id, labels, long.codes[start:stop], long.days[start:stop], long.kpi[start:stop], spend
    )


async def _insert_dataset_row(repository: GeoRepository, dataset_id: UUID, name: str, checked: CheckedPanel) -> Row:
    """Insert the dataset row (its creator the request's API key) and its ``created`` audit event."""
    row = await repository.insert_dataset(
        dataset_id=dataset_id,
        name=name,
        geo_count=len(checked.geos),
        date_count=checked.date_count,
        row_count=int(checked.long.codes.size),
        first_date=checked.first_date,
        last_date=checked.last_date,
        has_spend=checked.long.spend is not None,
        geos=checked.geos,
        quality=msgspec.to_builtins(checked.quality),
        created_by=current_key_id(),
    )
    counts = {"geos": row["geo_count"], "dates": row["date_count"], "rows": row["row_count"]}
    await audit.record_dataset_event(repository.connection, dataset_id, "created", {"name": name, **counts})
    return row


async def store_panel(pool: asyncpg.Pool, name: str, checked: CheckedPanel) -> Row:
    """Insert the dataset row and COPY its observations, in one transaction."""
    dataset_id = uuid.uuid4()
    long = checked.long
    labels = [geo.encode() for geo in long.geos]
    chunks = list(_record_chunks(long))
    async with pool.acquire() as connection, connection.transaction():
        repository = GeoRepository(connection)
        row = await _insert_dataset_row(repository, dataset_id, name, checked)
        building = asyncio.ensure_future(asyncio.to_thread(_payload, dataset_id, long, labels, *chunks[0]))
        for k in range(len(chunks)):
            payload = await building
            if k + 1 < len(chunks):
                building = asyncio.ensure_future(asyncio.to_thread(_payload, dataset_id, long, labels, *chunks[k + 1]))
            await repository.copy_observations(payload)
    return row


async def create_dataset(pool: asyncpg.Pool, name: str | None, long: LongPanel) -> GeoDataset:
    checked = await asyncio.to_thread(check_panel, long)
    row = await store_panel(pool, name or DEFAULT_NAME, checked)
    return dataset_from_row(row)


def _parse_and_build(parser: CsvPanelParser, block: bytes, dataset_id: UUID) -> bytes | None:
    """Parse one block and build its binary COPY payload (worker thread); ``None`` when it has no rows."""
    first = parser.rows_done
    parser.parse_block(block)
    if parser.rows_done == first:
        return None
    labels = [geo.encode() for geo in parser.geo_index]
    spend = parser.spend[-1] if parser.columns is not None and "spend" in parser.columns else None
    block_panel = LongPanel(
        geos=[], codes=parser.codes[-1], days=parser.days[-1], kpi=parser.kpi[-1], spend=spend, locate=_line_locator
    )
    return _payload(dataset_id, block_panel, labels, 0, parser.rows_done - first)


async def create_dataset_from_csv(pool: asyncpg.Pool, name: str | None, stream: AsyncIterator[bytes]) -> GeoDataset:
    """Parse the CSV as it streams in and COPY each parsed block while the next one is parsed.

    The rows go into an open transaction; the checks that need the whole panel (repeated geo and date,
    at least 2 geos) run at the end, and the dataset row is inserted last: any refusal rolls it all back.
    """
    dataset_id = uuid.uuid4()
    parser = CsvPanelParser()
    async with pool.acquire() as connection, connection.transaction():
        repository = GeoRepository(connection)
        copying: asyncio.Future[None] | None = None
        copy_error: asyncpg.PostgresError | None = None

        async def settle() -> None:
            nonlocal copy_error
            if copying is not None:
                try:
                    await copying
                except asyncpg.UniqueViolationError as exc:  # a repeated (geo, date): named by check_panel
                    copy_error = exc

        async for block in csv_blocks(stream):
            building = asyncio.ensure_future(asyncio.to_thread(_parse_and_build, parser, block, dataset_id))
            try:
                payload = await building
            finally:
                await settle()
            copying = None
            if payload is not None and copy_error is None:
                copying = asyncio.ensure_future(repository.copy_observations(payload))
        await settle()
        long = parser.finish()
        checked = await asyncio.to_thread(check_panel, long)
        if copy_error is not None:
            raise copy_error
        row = await _insert_dataset_row(repository, dataset_id, name or DEFAULT_NAME, checked)
    return dataset_from_row(row)


async def create_dataset_from_json(pool: asyncpg.Pool, upload: GeoDatasetUpload) -> GeoDataset:
    long = await asyncio.to_thread(panel_from_json, upload)
    return await create_dataset(pool, upload.name, long)


def dataset_from_row(row: Row) -> GeoDataset:
    quality = row["quality"]
    if isinstance(quality, str):
        quality = msgspec.json.decode(quality)
    return GeoDataset(
        id=row["id"],
        name=row["name"],
        created_at=row["created_at"],
        geo_count=row["geo_count"],
        geos=list(row["geos"]),
        date_count=row["date_count"],
        row_count=row["row_count"],
        first_date=row["first_date"],
        last_date=row["last_date"],
        has_spend=row["has_spend"],
        quality=msgspec.convert(quality, DataQuality),
        created_by=row["created_by"],
    )


async def get_dataset(pool: asyncpg.Pool, dataset_id: UUID) -> GeoDataset:
    async with pool.acquire() as connection:
        row = await GeoRepository(connection).get(dataset_id)
    if row is None:
        raise NotFound(f"No geo dataset {dataset_id}")
    return dataset_from_row(row)


async def get_series(pool: asyncpg.Pool, dataset_id: UUID, geo: str | None) -> GeoSeries:
    async with pool.acquire() as connection:
        repository = GeoRepository(connection)
        geos = await repository.geos(dataset_id)
        if geos is None:
            raise NotFound(f"No geo dataset {dataset_id}")
        if geo is not None and geo not in set(geos):
            raise invalid_field("geo", f"{geo!r} is not a geo of dataset {dataset_id}")
        rows = await repository.series(dataset_id, geo)
    return GeoSeries(
        dataset_id=dataset_id,
        geo=geo,
        rows=[GeoObservation(date=r["date"], geo=r["geo"], kpi=r["kpi"], spend=r["spend"]) for r in rows],
    )


async def validate_geo_design(
    connection: Connection,
    dataset_id: UUID,
    treatment_markets: list[str],
    pairs: list[list[str]] | None,
    exclude_from_controls: list[str] | None = None,
) -> None:
    """Refuse a geo design whose dataset does not exist or whose markets are not in it (400); also a
    market excluded from the controls that is unknown, listed twice, treated or a pair's control, or
    exclusions that leave fewer than 2 controls."""
    geos = await GeoRepository(connection).geos(dataset_id)
    if geos is None:
        raise invalid_field("dataset_id", f"no geo dataset {dataset_id}; upload one with POST /v1/geo/datasets")
    known = set(geos)
    unknown = [g for g in treatment_markets if g not in known]
    if unknown:
        raise invalid_field("treatment_markets", f"not in dataset {dataset_id}: {', '.join(map(repr, unknown))}")
    if len(set(treatment_markets)) != len(treatment_markets):
        raise invalid_field("treatment_markets", "lists a market twice")
    if len(known - set(treatment_markets)) < 2:
        raise invalid_field("treatment_markets", "leaves fewer than 2 control markets in the dataset")
    for i, pair in enumerate(pairs or []):
        for j, geo in enumerate(pair):
            if geo not in known:
                raise invalid_field(f"pairs[{i}][{j}]", f"{geo!r} is not in dataset {dataset_id}")
    excluded = exclude_from_controls or []
    treated, paired = set(treatment_markets), {geo for pair in pairs or [] for geo in pair}
    for i, geo in enumerate(excluded):
        field = f"exclude_from_controls[{i}]"
        if geo not in known:
            raise invalid_field(field, f"{geo!r} is not in dataset {dataset_id}")
        if geo in treated:
            raise invalid_field(field, f"{geo!r} is a treatment market; only controls can be excluded")
        if geo in paired:
            raise invalid_field(field, f"{geo!r} is the control of a pair; remove the pair instead")
        if geo in excluded[:i]:
            raise invalid_field(field, f"{geo!r} is listed twice")
    if len(known - treated - set(excluded)) < 2:
        raise invalid_field("exclude_from_controls", "leaves fewer than 2 control markets in the dataset")
