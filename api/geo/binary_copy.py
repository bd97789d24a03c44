"""Geo observations as a PostgreSQL binary ``COPY`` payload, assembled with numpy.

Building a Python tuple per row and letting asyncpg encode it costs about as much as the server's own
work; for panels of millions of rows the payload is instead laid out column by column in one byte
buffer (PostgreSQL documentation, "COPY — Binary Format"): the 19-byte signature header, then per row
a 16-bit field count and, per field, a 32-bit byte length (−1 for NULL) followed by the value in
network byte order, and a 16-bit −1 trailer. The row layout of ``(dataset_id uuid, version_added int4,
geo text, date date, kpi float8, spend float8)``::

    int16 6 | int32 16, uuid | int32 4, int32 version | int32 L, geo (L bytes UTF-8)
    | int32 4, int32 days since 2000-01-01 | int32 8, float8 kpi | int32 8, float8 spend   or   int32 -1 (no spend)
"""

from __future__ import annotations

from uuid import UUID

import numpy as np
import numpy.typing as npt

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
TRAILER = (-1).to_bytes(2, "big", signed=True)
COLUMNS = ("dataset_id", "version_added", "geo", "date", "kpi", "spend")
POSTGRES_EPOCH = np.datetime64("2000-01-01", "D")
_HEAD = 2 + 4 + 16 + 4 + 4 + 4  # field count, uuid length and value, version length and value, geo length
_TAIL = 4 + 4 + 4 + 8 + 4  # date length and value, kpi length and value, spend length


def _big_endian_bytes(values: npt.NDArray[np.generic], dtype: str) -> npt.NDArray[np.uint8]:
    """Each value as its big-endian bytes, one row per value."""
    converted = np.ascontiguousarray(values.astype(dtype))
    return converted.view(np.uint8).reshape(values.size, -1)


def _scatter(out: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], rows: npt.NDArray[np.uint8]) -> None:
    """Write ``rows[i]`` at ``out[starts[i]:]`` for every i."""
    out[starts[:, None] + np.arange(rows.shape[1])] = rows


def encode_observations(
    dataset_id: UUID,
    geo_labels: list[bytes],
    codes: npt.NDArray[np.int64],
    days: npt.NDArray[np.datetime64],
    kpi: npt.NDArray[np.float64],
    spend: npt.NDArray[np.float64] | None,
    version: int = 1,
) -> bytes:
    """The binary COPY payload of the rows ``(dataset_id, version, geo_labels[codes[i]], days[i], kpi[i],
    spend[i])`` (the columns :data:`COLUMNS`).

    ``geo_labels`` are UTF-8 encoded; a NaN (or absent) spend is written as NULL.
    """
    n = int(codes.size)
    label_lengths = np.array([len(label) for label in geo_labels], dtype=np.int64)
    lengths = label_lengths[codes]
    has_spend = np.zeros(n, dtype=bool) if spend is None else ~np.isnan(spend)
    row_bytes = _HEAD + lengths + _TAIL + 8 * has_spend
    starts = len(SIGNATURE) + np.concatenate(([0], np.cumsum(row_bytes)[:-1])).astype(np.int64)
    out = np.empty(len(SIGNATURE) + int(row_bytes.sum()) + len(TRAILER), dtype=np.uint8)
    out[: len(SIGNATURE)] = np.frombuffer(SIGNATURE, dtype=np.uint8)
    out[-len(TRAILER) :] = np.frombuffer(TRAILER, dtype=np.uint8)

    head = np.empty((n, _HEAD), dtype=np.uint8)
    constant = (
        (6).to_bytes(2, "big")
        + (16).to_bytes(4, "big")
        + dataset_id.bytes
        + (4).to_bytes(4, "big")
        + version.to_bytes(4, "big", signed=True)
    )
    head[:, : len(constant)] = np.frombuffer(constant, dtype=np.uint8)
    head[:, len(constant) :] = _big_endian_bytes(lengths, ">i4")
    _scatter(out, starts, head)

    geo_starts = starts + _HEAD
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(geo_labels) + 1))
    for code, label in enumerate(geo_labels):
        rows = order[bounds[code] : bounds[code + 1]]
        if rows.size and label:
            _scatter(
                out, geo_starts[rows], np.broadcast_to(np.frombuffer(label, dtype=np.uint8), (rows.size, len(label)))
            )

    tail = np.empty((n, _TAIL), dtype=np.uint8)
    tail[:, 0:4] = np.frombuffer((4).to_bytes(4, "big"), dtype=np.uint8)
    tail[:, 4:8] = _big_endian_bytes((days - POSTGRES_EPOCH).astype(np.int64), ">i4")
    tail[:, 8:12] = np.frombuffer((8).to_bytes(4, "big"), dtype=np.uint8)
    tail[:, 12:20] = _big_endian_bytes(kpi, ">f8")
    tail[:, 20:24] = np.where(has_spend[:, None], np.frombuffer((8).to_bytes(4, "big"), dtype=np.uint8), 255)
    tail_starts = geo_starts + lengths
    _scatter(out, tail_starts, tail)
    if spend is not None and has_spend.any():
        _scatter(out, tail_starts[has_spend] + _TAIL, _big_endian_bytes(spend[has_spend], ">f8"))
    return out.tobytes()


# One row of ``COPY (SELECT code::int4, day::int4, kpi::float8) TO STDOUT (FORMAT binary)``, no NULL: the field
# count, then each field's length and value, big-endian.
PANEL_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("code_length", ">i4"),
        ("code", ">i4"),
        ("day_length", ">i4"),
        ("day", ">i4"),
        ("kpi_length", ">i4"),
        ("kpi", ">f8"),
    ]
)
_HEADER = len(SIGNATURE)  # the 11-byte signature, flags and header-extension length (0)


def decode_panel(payload: bytes) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.datetime64], npt.NDArray[np.float64]]:
    """Market codes, days and KPI of a binary COPY of ``(code int4, day int4, kpi float8)`` rows."""
    body = memoryview(payload)[_HEADER : len(payload) - len(TRAILER)]
    rows = np.frombuffer(body, dtype=PANEL_ROW)
    if rows.size and not ((rows["fields"] == 3).all() and (rows["kpi_length"] == 8).all()):
        raise ValueError("not a COPY of (int4, int4, float8) rows without NULL")
    days = POSTGRES_EPOCH + rows["day"].astype(np.int64).astype("timedelta64[D]")
    return rows["code"].astype(np.int64), days, rows["kpi"].astype(np.float64)
