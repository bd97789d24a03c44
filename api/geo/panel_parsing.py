"""Uploaded geo panels as columns: the CSV parser (streamed, block by block) and the JSON rows.

A CSV upload is read as it streams in, in blocks of whole lines (:func:`csv_blocks`). Each block is parsed
column-wise with numpy (newline and comma positions, fixed-width byte columns, vectorized date and number
conversion), off the event loop; only a block holding a double quote goes through the ``csv`` module.
Errors name the line and column (``line 13, column kpi``); JSON errors name the row (``rows[12].kpi``).
Headers as GeoLift and Google's libraries write them are read as they are (:data:`COLUMN_ALIASES`).
Dates are ``YYYY-MM-DD`` (a midnight time allowed), or as a ``date_format`` in strftime style says
(``%m/%d/%Y``, ``%d.%m.%Y``; GeoLift's reader takes such a ``format``): :func:`check_date_format`,
:func:`parse_dates`, used by the CSV parser and :func:`panel_from_text_dates` alike.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import numpy.typing as npt

from api.geo.schemas import GeoDatasetTextDates, GeoDatasetUpload, GeoRowIn
from api.http.errors import InvalidInput, invalid_field
from stats.magnitude import MAX_MAGNITUDE

REQUIRED_COLUMNS = ("date", "geo", "kpi")
OPTIONAL_COLUMNS = ("spend",)
BLOCK_BYTES = 1024 * 1024
MAX_LINE_BYTES = 64 * 1024  # no panel row comes near this; a longer one is not CSV we can read
MAX_GEO_BYTES = 200

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
DayArray = npt.NDArray[np.datetime64]
Locate = Callable[[int, str], str]


def line_locator(row: int, column: str) -> str:
    return f"line {row + 2}, column {column}"


def json_locator(row: int, column: str) -> str:
    return f"rows[{row}].{column}"


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
# Dates in a format of the uploader's

DATE_FORMAT_FIELD = "date_format"
_PROBE = date(2001, 2, 3)  # year, month and day all different, so a format that drops one is seen


def check_date_format(date_format: str) -> None:
    """400 naming ``date_format`` unless it writes and reads back a whole date (year, month and day)."""
    try:
        written = _PROBE.strftime(date_format)
        read = datetime.strptime(written, date_format).date()
    except ValueError as exc:
        raise invalid_field(DATE_FORMAT_FIELD, f"{date_format!r} is not a strftime format: {exc}") from None
    if read != _PROBE:
        raise invalid_field(
            DATE_FORMAT_FIELD,
            f"{date_format!r} does not name the year, month and day (e.g. %m/%d/%Y, %d.%m.%Y, %Y%m%d)",
        )


def parse_dates(values: Sequence[str], date_format: str, locate: Callable[[int], str]) -> list[date]:
    """Each of ``values`` read with ``date_format`` (each distinct text parsed once); a value that does not
    match is a 400 naming ``locate(i)`` (its line and column, or its row) and the value."""
    parsed: dict[str, date] = {}
    days: list[date] = []
    for i, text in enumerate(values):
        day = parsed.get(text)
        if day is None:
            try:
                day = datetime.strptime(text.strip(), date_format).date()
            except ValueError:
                raise invalid_field(locate(i), f"{text!r} is not a date in the date_format {date_format!r}") from None
            parsed[text] = day
        days.append(day)
    return days


def panel_from_text_dates(upload: GeoDatasetTextDates, date_format: str) -> GeoDatasetUpload:
    """A JSON upload whose dates are written as ``date_format`` says, with its dates read."""
    check_date_format(date_format)
    days = parse_dates([row.date for row in upload.rows], date_format, lambda i: json_locator(i, "date"))
    rows = [
        GeoRowIn(date=day, geo=row.geo, kpi=row.kpi, spend=row.spend)
        for row, day in zip(upload.rows, days, strict=True)
    ]
    return GeoDatasetUpload(rows=rows, name=upload.name)


# ---------------------------------------------------------------------------------------------------
# CSV parsing


# Headers as the tools marketers use write them: GeoLift's `location,Y,date`, Google's trimmed_match and
# matched_markets `date,geo,response,cost` / `sales`.
COLUMN_ALIASES = {"location": "geo", "y": "kpi", "response": "kpi", "sales": "kpi", "cost": "spend"}
MIDNIGHT = np.frombuffer(b"00:00:00", dtype=np.uint8)


class CsvPanelParser:
    """Parses a CSV panel block by block (each block ends at a line end); :meth:`finish` gives the columns."""

    def __init__(self, date_format: str | None = None) -> None:
        """``date_format``: how the date column is written (strftime style); ``YYYY-MM-DD`` when ``None``."""
        if date_format is not None:
            check_date_format(date_format)
        self.date_format = date_format
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
            raise invalid_field("line 1", "the header is not UTF-8 text") from exc
        names = [name.strip().strip('"').strip().lower() for name in text.split(",")]
        names = [COLUMN_ALIASES.get(name, name) for name in names]
        expected = (
            "expected the columns date, geo, kpi and optionally spend (also read: "
            + ", ".join(f"{alias} as {name}" for alias, name in COLUMN_ALIASES.items())
            + ")"
        )
        unknown = [name for name in names if name not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
        if unknown:
            raise invalid_field("line 1", f"unknown column {unknown[0]!r}; {expected}")
        if len(set(names)) != len(names):
            raise invalid_field("line 1", f"a column is named twice; {expected}")
        missing = [name for name in REQUIRED_COLUMNS if name not in names]
        if missing:
            raise invalid_field("line 1", f"no column {missing[0]!r}; {expected}")
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
            raise invalid_field(
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
            raise invalid_field(f"line {line}", "is not UTF-8 text") from exc
        rows = list(csv.reader(io.StringIO(text, newline="")))
        width = len(self.columns)
        for i, row in enumerate(rows):
            if len(row) != width:
                raise invalid_field(
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
        return invalid_field(line_locator(self.rows_done + row, column), reason)

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
        """``YYYY-MM-DD``, or with a midnight time as some tools write it (``2020-01-01T00:00:00``); or as
        ``date_format`` says."""
        if self.date_format is not None:
            return self._formatted_dates(column)
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

    def _formatted_dates(self, column: np.ndarray) -> DayArray:
        """Each distinct text parsed once; the first line holding one that does not parse is named."""
        assert self.date_format is not None
        labels, first, inverse = np.unique(column, return_index=True, return_inverse=True)
        by_line = np.argsort(first, kind="stable")  # labels in the order their first line comes
        texts = [labels[k].decode("utf-8", "replace") for k in by_line.tolist()]
        days = parse_dates(
            texts, self.date_format, lambda i: line_locator(self.rows_done + int(first[by_line[i]]), "date")
        )
        label_days = np.empty(labels.size, dtype="datetime64[D]")
        label_days[by_line] = np.array(days, dtype="datetime64[D]")
        formatted: DayArray = label_days[inverse.reshape(-1)]
        return formatted

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
        huge = present & (values > MAX_MAGNITUDE)
        if huge.any():
            row = int(np.flatnonzero(huge)[0])
            raise self._error(row, name, f"must be at most {MAX_MAGNITUDE:g}, got {values[row]:g}")
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
            raise invalid_field("line 1", "the body is empty; expected a header line date,geo,kpi[,spend]")
        geos = list(self.geo_index)
        empty_f = np.empty(0, dtype=np.float64)
        return LongPanel(
            geos=geos,
            codes=np.concatenate(self.codes) if self.codes else np.empty(0, dtype=np.int64),
            days=np.concatenate(self.days) if self.days else np.empty(0, dtype="datetime64[D]"),
            kpi=np.concatenate(self.kpi) if self.kpi else empty_f,
            spend=(np.concatenate(self.spend) if self.spend else empty_f) if "spend" in self.columns else None,
            locate=line_locator,
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
            raise invalid_field(json_locator(int(np.flatnonzero(np.isinf(values))[0]), name), "must be a finite number")
    return LongPanel(geos=list(index), codes=codes, days=days, kpi=kpi, spend=spend, locate=json_locator)
