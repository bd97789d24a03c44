"""Geo datasets: check an uploaded panel (parsed by :mod:`api.geo.panel_parsing`), assess its quality and
store it; read datasets and their series; check a geo experiment's design against its dataset.

The rows are written with ``COPY`` in the transaction that inserts the dataset row, in chunks whose
records are built in a worker thread while the previous chunk is copied; any error rolls it all back.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal
from uuid import UUID

import asyncpg
import msgspec
import numpy as np

from api.audit import service as audit
from api.auth.caller import current_key_id
from api.db.database import Connection
from api.geo.binary_copy import decode_panel, encode_observations
from api.geo.markets import MarketNames, case_variants
from api.geo.panel_parsing import (
    CsvPanelParser,
    IntArray,
    LongPanel,
    csv_blocks,
    json_locator,
    line_locator,
    panel_from_json,
)
from api.geo.repository import GeoRepository, PanelSummary, Row
from api.geo.schemas import (
    DataQuality,
    GeoDataset,
    GeoDatasetAppend,
    GeoDatasetPage,
    GeoDatasetSummary,
    GeoDatasetUpload,
    GeoDatasetVersion,
    GeoDatasetVersions,
    GeoObservation,
    GeoRowsAppend,
    GeoSeries,
    MissingDates,
    Outlier,
    ZeroRun,
)
from api.http.cursors import page_start, split_page
from api.http.errors import Conflict, NotFound, invalid_field
from stats.geo.panel_quality import PanelQuality, assess_panel, pivot_long_to_panel

COPY_CHUNK_ROWS = 100_000
LISTED_FINDINGS = 1000
MAX_PANEL_CELLS = 10_000_000
DEFAULT_NAME = "Geo panel"
LISTED_COLLISIONS = 5

OnConflict = Literal["error", "replace"]


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


def _refuse_case_variants(long: LongPanel) -> None:
    """400 naming the first row of a market spelt like an earlier one but for case (``Chicago``, ``chicago``):
    requests match markets regardless of case, as GeoLift does, so the two would be one market."""
    variants = case_variants(long.geos)
    if not variants:
        return
    first, later = variants[0][0], variants[0][1]
    row = int(np.argmax(long.codes == long.geos.index(later)))
    raise invalid_field(
        long.locate(row, "geo"),
        f"{later!r} differs from the market {first!r} only by case; markets are matched regardless of case, "
        "so give each market one spelling",
    )


def _refuse_repeated_dates(long: LongPanel, key: IntArray) -> None:
    """400 naming the earliest row that repeats a (geo, date), and the row it repeats; ``key`` numbers each row's
    (geo, date), equal for equal pairs."""
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    repeated = np.flatnonzero(ordered[1:] == ordered[:-1])
    if repeated.size:
        later = order[repeated + 1]
        pick = int(np.argmin(later))
        row, earlier = int(later[pick]), int(order[repeated[pick]])
        geo = long.geos[int(long.codes[row])]
        raise invalid_field(
            long.locate(row, "date"),
            f"geo {geo!r} on {long.days[row]} appears twice (first at {long.locate(earlier, 'date')})",
        )


def check_panel(long: LongPanel) -> CheckedPanel:
    """Refuse fewer than 2 geos and repeated (geo, date); assess the panel on its regular date axis."""
    if len(long.geos) < 2:
        found = f"only {long.geos[0]!r}" if long.geos else "none"
        name = "rows" if long.locate is json_locator else "column geo"
        raise invalid_field(name, f"a geo panel needs at least 2 geos; found {found}")
    _refuse_case_variants(long)
    day_numbers = long.days.astype(np.int64)
    first, last = int(day_numbers.min()), int(day_numbers.max())
    distinct = np.unique(day_numbers)
    step = int(np.gcd.reduce(np.diff(distinct))) if distinct.size > 1 else 1
    date_count = (last - first) // step + 1
    if date_count * len(long.geos) > MAX_PANEL_CELLS:
        raise invalid_field(
            long.locate(int(np.argmax(day_numbers)), "date"),
            f"the panel would span {date_count} dates x {len(long.geos)} geos; at most "
            f"{MAX_PANEL_CELLS:,} cells are accepted",
        )
    date_index = (day_numbers - first) // step
    key = long.codes * date_count + date_index
    _refuse_repeated_dates(long, key)
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


def _payload(dataset_id: UUID, long: LongPanel, labels: list[bytes], start: int, stop: int, version: int = 1) -> bytes:
    """Rows ``start:stop`` as a binary COPY payload of ``version`` (worker thread)."""
    spend = None if long.spend is None else long.spend[start:stop]
    return encode_observations(
        dataset_id, labels, long.codes[start:stop], long.days[start:stop], long.kpi[start:stop], spend, version
    )


def _summary(checked: CheckedPanel, *, has_spend: bool) -> PanelSummary:
    """The summary a dataset row stores of a checked panel."""
    return PanelSummary(
        geo_count=len(checked.geos),
        date_count=checked.date_count,
        row_count=int(checked.long.codes.size),
        first_date=checked.first_date,
        last_date=checked.last_date,
        has_spend=has_spend,
        geos=checked.geos,
        quality=msgspec.to_builtins(checked.quality),
    )


async def _insert_dataset_row(repository: GeoRepository, dataset_id: UUID, name: str, checked: CheckedPanel) -> Row:
    """Insert the dataset row (its creator the request's API key) and its ``created`` audit event."""
    row = await repository.insert_dataset(
        dataset_id=dataset_id,
        name=name,
        summary=_summary(checked, has_spend=checked.long.spend is not None),
        created_by=current_key_id(),
    )
    await repository.insert_version(
        dataset_id,
        1,
        created_by=row["created_by"],
        idempotency_key=None,
        rows_added=row["row_count"],
        rows_replaced=0,
        added=(checked.first_date, checked.last_date),
        new_geos=checked.geos,
        summary=row,
        created_at=row["created_at"],
    )
    counts = {"geos": row["geo_count"], "dates": row["date_count"], "rows": row["row_count"]}
    await audit.record_dataset_event(repository.connection, dataset_id, "created", {"name": name, **counts})
    return row


async def _copy_panel(repository: GeoRepository, dataset_id: UUID, long: LongPanel, version: int) -> None:
    """COPY the rows of ``long`` as ``version``, each chunk's payload built while the previous one is copied."""
    labels = [geo.encode() for geo in long.geos]
    chunks = list(_record_chunks(long))
    if not chunks:
        return
    building = asyncio.ensure_future(asyncio.to_thread(_payload, dataset_id, long, labels, *chunks[0], version))
    for k in range(len(chunks)):
        payload = await building
        if k + 1 < len(chunks):
            building = asyncio.ensure_future(
                asyncio.to_thread(_payload, dataset_id, long, labels, *chunks[k + 1], version)
            )
        await repository.copy_observations(payload)


async def store_panel(pool: asyncpg.Pool, name: str, checked: CheckedPanel) -> Row:
    """Insert the dataset row and COPY its observations, in one transaction."""
    dataset_id = uuid.uuid4()
    async with pool.acquire() as connection, connection.transaction():
        repository = GeoRepository(connection)
        row = await _insert_dataset_row(repository, dataset_id, name, checked)
        await _copy_panel(repository, dataset_id, checked.long, 1)
    return row


async def create_dataset(pool: asyncpg.Pool, name: str | None, long: LongPanel) -> GeoDataset:
    checked = await asyncio.to_thread(check_panel, long)
    row = await store_panel(pool, name or DEFAULT_NAME, checked)
    return dataset_from_row(row)


def _parse_and_build(parser: CsvPanelParser, block: bytes, dataset_id: UUID, version: int = 1) -> bytes | None:
    """Parse one block and build its binary COPY payload (worker thread); ``None`` when it has no rows."""
    first = parser.rows_done
    parser.parse_block(block)
    if parser.rows_done == first:
        return None
    labels = [geo.encode() for geo in parser.geo_index]
    spend = parser.spend[-1] if parser.columns is not None and "spend" in parser.columns else None
    block_panel = LongPanel(
        geos=[], codes=parser.codes[-1], days=parser.days[-1], kpi=parser.kpi[-1], spend=spend, locate=line_locator
    )
    return _payload(dataset_id, block_panel, labels, 0, parser.rows_done - first, version)


async def create_dataset_from_csv(
    pool: asyncpg.Pool, name: str | None, stream: AsyncIterator[bytes], date_format: str | None = None
) -> GeoDataset:
    """Parse the CSV as it streams in and COPY each parsed block while the next one is parsed.

    The rows go into an open transaction; the checks that need the whole panel (repeated geo and date,
    at least 2 geos) run at the end, and the dataset row is inserted last: any refusal rolls it all back.
    """
    dataset_id = uuid.uuid4()
    async with pool.acquire() as connection, connection.transaction():
        repository = GeoRepository(connection)
        long, copy_error = await _copy_csv(repository, stream, dataset_id, 1, date_format)
        checked = await asyncio.to_thread(check_panel, long)
        if copy_error is not None:
            raise copy_error
        row = await _insert_dataset_row(repository, dataset_id, name or DEFAULT_NAME, checked)
    return dataset_from_row(row)


async def _copy_csv(
    repository: GeoRepository,
    stream: AsyncIterator[bytes],
    dataset_id: UUID,
    version: int,
    date_format: str | None = None,
) -> tuple[LongPanel, asyncpg.PostgresError | None]:
    """Parse the CSV as it streams in and COPY each parsed block as ``version`` while the next one is parsed.

    Returns the parsed columns and the unique violation a repeated (geo, date) caused, if any: the caller
    names the repeated row from the columns (a clearer message than the server's) and re-raises it. Dates are
    read as ``date_format`` says (``YYYY-MM-DD`` without one).
    """
    parser = CsvPanelParser(date_format)
    copying: asyncio.Future[None] | None = None
    copy_error: asyncpg.PostgresError | None = None

    async def settle() -> None:
        nonlocal copy_error
        if copying is not None:
            try:
                await copying
            except asyncpg.UniqueViolationError as exc:  # a repeated (geo, date): named by the caller's checks
                copy_error = exc

    async for block in csv_blocks(stream):
        building = asyncio.ensure_future(asyncio.to_thread(_parse_and_build, parser, block, dataset_id, version))
        try:
            payload = await building
        finally:
            await settle()
        copying = None
        if payload is not None and copy_error is None:
            copying = asyncio.ensure_future(repository.copy_observations(payload))
    await settle()
    return parser.finish(), copy_error


async def create_dataset_from_json(pool: asyncpg.Pool, upload: GeoDatasetUpload) -> GeoDataset:
    long = await asyncio.to_thread(panel_from_json, upload)
    return await create_dataset(pool, upload.name, long)


def _panel_extent(row: Row) -> dict[str, Any]:
    """The markets, dates and rows a dataset row (or a version's) counts, as the API names them."""
    return {
        "geo_count": row["geo_count"],
        "date_count": row["date_count"],
        "row_count": row["row_count"],
        "first_date": row["first_date"],
        "last_date": row["last_date"],
        "has_spend": row["has_spend"],
    }


def dataset_from_row(row: Row) -> GeoDataset:
    """A dataset row (``geo_datasets``, or :meth:`GeoRepository.get`'s as of a version) for the API."""
    quality = row["quality"]
    if isinstance(quality, str):
        quality = msgspec.json.decode(quality)
    keys = row.keys()
    version = row["version"]
    return GeoDataset(
        version=version,
        latest_version=row["latest_version"] if "latest_version" in keys else version,
        version_created_at=row["version_created_at"] if "version_created_at" in keys else row["created_at"],
        id=row["id"],
        name=row["name"],
        created_at=row["created_at"],
        geos=list(row["geos"]),
        **_panel_extent(row),
        quality=msgspec.convert(quality, DataQuality),
        created_by=row["created_by"],
        workspace=row["workspace"],
    )


async def dataset_at(connection: Connection, dataset_id: UUID, version: int | None) -> Row | None:
    """The dataset as of ``version`` (the latest when ``None``; see :meth:`GeoRepository.get`): ``None`` when no
    such dataset, a 400 naming ``dataset_version`` when the dataset has no such version."""
    repository = GeoRepository(connection)
    row = await repository.get(dataset_id, version)
    if row is None and version is not None:
        latest = await repository.latest_version(dataset_id)
        if latest is not None:
            raise invalid_field(
                "dataset_version", f"dataset {dataset_id} has no version {version}; its versions are 1 to {latest}"
            )
    return row


async def get_dataset(pool: asyncpg.Pool, dataset_id: UUID, version: int | None = None) -> GeoDataset:
    async with pool.acquire() as connection:
        row = await dataset_at(connection, dataset_id, version)
    if row is None:
        raise NotFound(f"No geo dataset {dataset_id}")
    return dataset_from_row(row)


async def get_series(pool: asyncpg.Pool, dataset_id: UUID, geo: str | None, version: int | None = None) -> GeoSeries:
    async with pool.acquire() as connection:
        dataset = await dataset_at(connection, dataset_id, version)
        if dataset is None:
            raise NotFound(f"No geo dataset {dataset_id}")
        if geo is not None:
            geo = MarketNames(dataset["geos"], dataset_id).resolve("geo", [geo])[0]
        rows = await GeoRepository(connection).series(dataset_id, geo, dataset["version"])
    return GeoSeries(
        dataset_id=dataset_id,
        geo=geo,
        rows=[GeoObservation(date=r["date"], geo=r["geo"], kpi=r["kpi"], spend=r["spend"]) for r in rows],
        dataset_version=dataset["version"],
    )


# ---------------------------------------------------------------------------------------------------
# Versions: appends, the list of versions, the list of datasets


def version_from_row(row: Row) -> GeoDatasetVersion:
    return GeoDatasetVersion(
        dataset_id=row["dataset_id"],
        version=row["version"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        idempotency_key=row["idempotency_key"],
        rows_added=row["rows_added"],
        rows_replaced=row["rows_replaced"],
        added_first_date=row["added_first_date"],
        added_last_date=row["added_last_date"],
        new_geos=list(row["new_geos"]),
        **_panel_extent(row),
    )


def _refuse_case_twins_of_known(long: LongPanel, known: list[str]) -> None:
    """400 naming the first appended row of a market spelt like one of the dataset's but for case: requests match
    markets regardless of case, so the two would be one market."""
    spelling = {geo.casefold(): geo for geo in known}
    for code, geo in enumerate(long.geos):
        twin = spelling.get(geo.casefold())
        if twin is not None and twin != geo:
            row = int(np.argmax(long.codes == code))
            raise invalid_field(
                long.locate(row, "geo"),
                f"{geo!r} differs from the dataset's market {twin!r} only by case; markets are matched regardless "
                f"of case, so send it as {twin!r}",
            )


def check_appended(long: LongPanel) -> None:
    """Refuse an append without rows, with two markets that differ only by case, or with a (geo, date) twice
    (400 naming the later row)."""
    if long.codes.size == 0:
        raise invalid_field("rows" if long.locate is json_locator else "body", "has no rows to append")
    _refuse_case_variants(long)
    day_numbers = long.days.astype(np.int64)
    key = long.codes * (int(day_numbers.max()) - int(day_numbers.min()) + 1) + (day_numbers - int(day_numbers.min()))
    _refuse_repeated_dates(long, key)


def _row_of(long: LongPanel, geo: str, day: date) -> int:
    code = long.geos.index(geo)
    return int(np.flatnonzero((long.codes == code) & (long.days == np.datetime64(day, "D")))[0])


async def _refuse_collisions(repository: GeoRepository, dataset_id: UUID, version: int, long: LongPanel) -> None:
    """409 naming the first few appended market-dates the dataset already holds (with the row of each)."""
    found = await repository.collisions(dataset_id, version, LISTED_COLLISIONS)
    if not found:
        return
    total = int(found[0]["total"])
    listed = ", ".join(f"{r['geo']!r} on {r['date']}" for r in found)
    more = f" and {total - len(found)} more" if total > len(found) else ""
    raise Conflict(
        f"{total} appended market-date(s) are already in dataset {dataset_id}: {listed}{more}. Send only new "
        "market-dates, or append with on_conflict=replace to record these rows as corrections (the earlier "
        "values stay readable with dataset_version)",
        [
            (long.locate(_row_of(long, r["geo"], r["date"]), "date"), f"{r['geo']!r} on {r['date']} is already stored")
            for r in found
        ],
    )


def _stored_panel(payload: bytes, geos: list[str]) -> LongPanel:
    """The stored rows ``COPY``'d out in binary (:meth:`GeoRepository.current_panel`), as columns."""
    codes, days, kpi = decode_panel(payload)
    return LongPanel(geos=geos, codes=codes, days=days, kpi=kpi, spend=None, locate=_rows_locator)


def _rows_locator(_row: int, _column: str) -> str:
    return "rows"


async def _finish_append(
    repository: GeoRepository,
    dataset: Row,
    version: int,
    long: LongPanel,
    on_conflict: OnConflict,
    idempotency_key: str | None,
) -> GeoDatasetAppend:
    """After the appended rows are copied as ``version``: refuse or record collisions, recompute the dataset's
    summary and findings on its new panel, record the version and its audit event."""
    dataset_id: UUID = dataset["id"]
    before = await repository.get(dataset_id)
    assert before is not None
    _refuse_case_twins_of_known(long, before["geos"])
    if on_conflict == "error":
        await _refuse_collisions(repository, dataset_id, version, long)
        replaced = 0
    else:
        replaced = await repository.mark_replaced(dataset_id, version)
    geos = sorted({*before["geos"], *long.geos})
    stored = await repository.current_panel(dataset_id, geos)
    checked = await asyncio.to_thread(lambda: check_panel(_stored_panel(stored, geos)))
    appended_spend = long.spend is not None and bool((~np.isnan(long.spend)).any())
    updated = await repository.update_latest(
        dataset_id, version, _summary(checked, has_spend=bool(dataset["has_spend"]) or appended_spend)
    )
    known = set(before["geos"])
    new_geos = sorted(g for g in set(long.geos) if g not in known)
    days = long.days
    written = await repository.insert_version(
        dataset_id,
        version,
        created_by=current_key_id(),
        idempotency_key=idempotency_key,
        rows_added=int(long.codes.size),
        rows_replaced=replaced,
        added=(_to_date(days.min()), _to_date(days.max())),
        new_geos=new_geos,
        summary=updated,
    )
    await audit.record_dataset_event(
        repository.connection,
        dataset_id,
        "rows_appended",
        {
            "version": version,
            "rows": int(long.codes.size),
            "replaced": replaced,
            "first_date": written["added_first_date"].isoformat(),
            "last_date": written["added_last_date"].isoformat(),
            "new_geos": len(new_geos),
        },
    )
    at_version = await repository.get(dataset_id, version)
    assert at_version is not None
    return GeoDatasetAppend(appended=version_from_row(written), dataset=dataset_from_row(at_version))


async def _lock_for_append(repository: GeoRepository, dataset_id: UUID) -> Row:
    dataset = await repository.lock_for_append(dataset_id)
    if dataset is None:
        raise NotFound(f"No geo dataset {dataset_id}")
    return dataset


async def append_rows_from_csv(
    pool: asyncpg.Pool,
    dataset_id: UUID,
    stream: AsyncIterator[bytes],
    on_conflict: OnConflict,
    idempotency_key: str | None = None,
    date_format: str | None = None,
) -> GeoDatasetAppend:
    """Append a CSV's rows as the dataset's next version, streamed as an upload is (same parser, same checks,
    ``date_format`` as the upload's), in one transaction: any refusal stores nothing."""
    async with pool.acquire() as connection, connection.transaction():
        repository = GeoRepository(connection)
        dataset = await _lock_for_append(repository, dataset_id)
        version = int(dataset["version"]) + 1
        long, copy_error = await _copy_csv(repository, stream, dataset_id, version, date_format)
        await asyncio.to_thread(check_appended, long)
        if copy_error is not None:
            raise copy_error
        return await _finish_append(repository, dataset, version, long, on_conflict, idempotency_key)


async def append_rows_from_json(
    pool: asyncpg.Pool,
    dataset_id: UUID,
    rows: GeoRowsAppend,
    on_conflict: OnConflict,
    idempotency_key: str | None = None,
) -> GeoDatasetAppend:
    """Append JSON rows as the dataset's next version (the checks of :func:`append_rows_from_csv`)."""
    long = await asyncio.to_thread(panel_from_json, GeoDatasetUpload(rows=rows.rows))
    await asyncio.to_thread(check_appended, long)
    async with pool.acquire() as connection, connection.transaction():
        repository = GeoRepository(connection)
        dataset = await _lock_for_append(repository, dataset_id)
        version = int(dataset["version"]) + 1
        await _copy_panel(repository, dataset_id, long, version)
        return await _finish_append(repository, dataset, version, long, on_conflict, idempotency_key)


async def list_versions(pool: asyncpg.Pool, dataset_id: UUID) -> GeoDatasetVersions:
    async with pool.acquire() as connection:
        repository = GeoRepository(connection)
        rows = await repository.versions(dataset_id)
    if not rows:
        raise NotFound(f"No geo dataset {dataset_id}")
    return GeoDatasetVersions(dataset_id=dataset_id, versions=[version_from_row(r) for r in rows])


async def list_datasets(pool: asyncpg.Pool, *, name: str | None, cursor: str | None, limit: int) -> GeoDatasetPage:
    after = page_start(cursor)
    async with pool.acquire() as connection:
        rows = await GeoRepository(connection).list_page(name=name, after=after, limit=limit + 1)
    page, next_cursor = split_page(rows, limit)
    return GeoDatasetPage(
        items=[
            GeoDatasetSummary(
                id=r["id"],
                name=r["name"],
                created_at=r["created_at"],
                created_by=r["created_by"],
                workspace=r["workspace"],
                versions=r["version"],
                geos=list(r["geos"]),
                **_panel_extent(r),
            )
            for r in page
        ],
        next_cursor=next_cursor,
    )


async def canonical_geo_design(connection: Connection, design: dict[str, Any]) -> dict[str, Any]:
    """``design`` (a stored geo design) with every market it names in its dataset's spelling, matched
    regardless of case; unknown names (and an unknown dataset) are left for :func:`validate_geo_design`."""
    dataset = await GeoRepository(connection).get(UUID(str(design["dataset_id"])))
    if dataset is None:
        return design
    names = MarketNames(dataset["geos"], str(design["dataset_id"]))
    spelt = dict(design)
    for field in ("treatment_markets", "exclude_from_controls"):
        if spelt.get(field) is not None:
            spelt[field] = [names.canonical(m) for m in spelt[field]]
    if spelt.get("pairs") is not None:
        spelt["pairs"] = [[names.canonical(m) for m in pair] for pair in spelt["pairs"]]
    if spelt.get("cells") is not None:
        spelt["cells"] = [
            {**cell, "treatment_markets": [names.canonical(m) for m in cell["treatment_markets"]]}
            for cell in spelt["cells"]
        ]
    if spelt.get("spend_change") is not None:
        spelt["spend_change"] = {names.canonical(m): v for m, v in spelt["spend_change"].items()}
    return spelt


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
    dataset = await GeoRepository(connection).get(dataset_id)
    if dataset is None:
        raise invalid_field("dataset_id", f"no geo dataset {dataset_id}; upload one with POST /v1/geo/datasets")
    known = set(dataset["geos"])
    names = MarketNames(dataset["geos"], dataset_id)
    names.resolve("treatment_markets", treatment_markets)
    if len(set(treatment_markets)) != len(treatment_markets):
        raise invalid_field("treatment_markets", "lists a market twice")
    if len(known - set(treatment_markets)) < 2:
        raise invalid_field("treatment_markets", "leaves fewer than 2 control markets in the dataset")
    for i, pair in enumerate(pairs or []):
        for j, geo in enumerate(pair):
            names.resolve(f"pairs[{i}][{j}]", [geo])
    excluded = exclude_from_controls or []
    treated, paired = set(treatment_markets), {geo for pair in pairs or [] for geo in pair}
    for i, geo in enumerate(excluded):
        field = f"exclude_from_controls[{i}]"
        names.resolve(field, [geo])
        if geo in treated:
            raise invalid_field(field, f"{geo!r} is a treatment market; only controls can be excluded")
        if geo in paired:
            raise invalid_field(field, f"{geo!r} is the control of a pair; remove the pair instead")
        if geo in excluded[:i]:
            raise invalid_field(field, f"{geo!r} is listed twice")
    if len(known - treated - set(excluded)) < 2:
        raise invalid_field("exclude_from_controls", "leaves fewer than 2 control markets in the dataset")
