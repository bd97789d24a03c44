"""The numpy-built binary COPY payload stores exactly what asyncpg's own record encoder stores."""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator

import asyncpg
import numpy as np

from api.geo.binary_copy import COLUMNS, decode_panel, encode_observations

TABLE = """
CREATE TEMPORARY TABLE {name} (
    dataset_id uuid NOT NULL, version_added integer NOT NULL, geo text NOT NULL, date date NOT NULL,
    kpi double precision NOT NULL, spend double precision
)
"""


async def _once(payload: bytes) -> AsyncIterator[bytes]:
    yield payload


async def test_binary_payload_round_trips_like_copy_records(database_url: str) -> None:
    labels = ["chicago", "são paulo", "x", "新宿区", "portland-or"]
    rng = np.random.default_rng(1)
    n = 1000
    codes = rng.integers(len(labels), size=n).astype(np.int64)
    days = np.datetime64("1999-12-25", "D") + rng.integers(0, 4000, size=n).astype("timedelta64[D]")
    kpi = rng.gamma(2.0, 100.0, size=n)
    kpi[:3] = [0.0, 1e-300, 1.5e12]
    spend = np.where(rng.random(n) < 0.3, np.nan, rng.random(n) * 1000)
    dataset_id = uuid.uuid4()
    payload = encode_observations(dataset_id, [g.encode() for g in labels], codes, days, kpi, spend, version=7)
    records = [
        (dataset_id, 7, labels[c], d.item(), k, None if math.isnan(s) else s)
        for c, d, k, s in zip(codes.tolist(), days, kpi.tolist(), spend.tolist(), strict=True)
    ]
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(TABLE.format(name="from_payload"))
        await connection.execute(TABLE.format(name="from_records"))
        await connection.copy_to_table("from_payload", source=_once(payload), columns=list(COLUMNS), format="binary")
        await connection.copy_records_to_table("from_records", records=records, columns=list(COLUMNS))
        ordered = "SELECT dataset_id, version_added, geo, date, kpi, spend FROM {} ORDER BY ctid"
        assert await connection.fetch(ordered.format("from_payload")) == await connection.fetch(
            ordered.format("from_records")
        )
    finally:
        await connection.close()


async def test_a_panel_without_spend_stores_null_spend(database_url: str) -> None:
    dataset_id = uuid.uuid4()
    days = np.array(["2021-01-01", "2021-01-02"], dtype="datetime64[D]")
    payload = encode_observations(dataset_id, [b"a"], np.zeros(2, np.int64), days, np.array([1.0, 2.0]), None)
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(TABLE.format(name="no_spend"))
        await connection.copy_to_table("no_spend", source=_once(payload), columns=list(COLUMNS), format="binary")
        rows = await connection.fetch("SELECT geo, kpi, spend FROM no_spend ORDER BY date")
        assert [tuple(r) for r in rows] == [("a", 1.0, None), ("a", 2.0, None)]
    finally:
        await connection.close()


async def test_a_binary_panel_copied_out_decodes_as_asyncpg_reads_it(database_url: str) -> None:
    rng = np.random.default_rng(2)
    n = 500
    codes = rng.integers(0, 40, size=n).tolist()
    days = (np.datetime64("1999-12-25", "D") + rng.integers(0, 9000, size=n).astype("timedelta64[D]")).tolist()
    kpi = rng.gamma(2.0, 100.0, size=n).tolist()
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("CREATE TEMPORARY TABLE panel (code int4, date date, kpi float8)")
        await connection.copy_records_to_table("panel", records=list(zip(codes, days, kpi, strict=True)))
        query = "SELECT code, (date - DATE '2000-01-01')::int4 AS day, kpi FROM panel ORDER BY ctid"
        received = bytearray()

        async def keep(chunk: bytes) -> None:
            received.extend(chunk)

        await connection.copy_from_query(query, output=keep, format="binary")
        expected = await connection.fetch("SELECT code, date, kpi FROM panel ORDER BY ctid")
    finally:
        await connection.close()
    decoded_codes, decoded_days, decoded_kpi = decode_panel(bytes(received))
    assert decoded_codes.tolist() == [r["code"] for r in expected]
    assert decoded_days.tolist() == [r["date"] for r in expected]
    assert decoded_kpi.tolist() == [r["kpi"] for r in expected]
