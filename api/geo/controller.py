"""HTTP endpoints of the geo datasets resource."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

import asyncpg
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.spec import Example, OpenAPIFormat, OpenAPIType, Schema
from litestar.params import FromPath, QueryParameter
from litestar.status_codes import HTTP_201_CREATED

from api.fields.text import NO_NUL
from api.geo import service
from api.geo.panel_parsing import panel_from_text_dates
from api.geo.schemas import (
    GeoDataset,
    GeoDatasetAppend,
    GeoDatasetPage,
    GeoDatasetTextDates,
    GeoDatasetUpload,
    GeoDatasetVersions,
    GeoRowIn,
    GeoRowsAppend,
    GeoRowsAppendTextDates,
    GeoSeries,
)
from api.http.errors import invalid_field, problem_responses
from api.http.request_bodies import JSON_OR_CSV, Upload, decode_json_body
from api.openapi.examples import ExampleOperation
from api.openapi.uploads import json_or_csv_operation
from stats.magnitude import MAX_MAGNITUDE

UPLOAD_EXAMPLES = [
    Example(
        summary="Two markets, three days (JSON)",
        value={
            "name": "Daily sales by city",
            "rows": [
                {"date": "2021-01-01", "geo": "chicago", "kpi": 3300, "spend": 120.5},
                {"date": "2021-01-02", "geo": "chicago", "kpi": 3202, "spend": 118.0},
                {"date": "2021-01-03", "geo": "chicago", "kpi": 3410, "spend": 121.0},
                {"date": "2021-01-01", "geo": "portland", "kpi": 1510, "spend": 60.0},
                {"date": "2021-01-02", "geo": "portland", "kpi": 1498, "spend": 61.5},
                {"date": "2021-01-03", "geo": "portland", "kpi": 1533, "spend": 59.0},
            ],
        },
    ),
]


APPEND_EXAMPLES = [
    Example(
        summary="A test's next day in two markets (JSON)",
        value={
            "rows": [
                {"date": "2021-04-16", "geo": "chicago", "kpi": 3350},
                {"date": "2021-04-16", "geo": "portland", "kpi": 1502},
            ]
        },
    ),
]

# Written out (as for the other JSON-or-CSV uploads) because the handler streams its body instead of
# declaring a `data` parameter Litestar would read whole; the same constraints as GeoDatasetUpload's.
_NAME = Schema(type=OpenAPIType.STRING, min_length=1, max_length=200, pattern=NO_NUL)
JSON_REQUEST_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["rows"],
    additional_properties=False,
    description=GeoDatasetUpload.__doc__,
    properties={
        "name": Schema(one_of=[_NAME, Schema(type=OpenAPIType.NULL)], description="A human-readable name."),
        "rows": Schema(
            type=OpenAPIType.ARRAY,
            min_items=2,
            description="One row per (geo, date).",
            items=Schema(
                type=OpenAPIType.OBJECT,
                required=["date", "geo", "kpi"],
                additional_properties=False,
                description=GeoRowIn.__doc__,
                properties={
                    "date": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.DATE),
                    "geo": Schema(
                        type=OpenAPIType.STRING,
                        min_length=1,
                        max_length=200,
                        pattern=NO_NUL,
                        description="Market name, as in the panel.",
                    ),
                    "kpi": Schema(
                        type=OpenAPIType.NUMBER,
                        minimum=0.0,
                        maximum=MAX_MAGNITUDE,
                        description="The outcome; must not be negative.",
                    ),
                    "spend": Schema(
                        one_of=[
                            Schema(type=OpenAPIType.NUMBER, minimum=0.0, maximum=MAX_MAGNITUDE),
                            Schema(type=OpenAPIType.NULL),
                        ],
                        description="Media spend in that market on that date.",
                    ),
                },
            ),
        ),
    },
)
_ROW_SCHEMA = JSON_REQUEST_SCHEMA.properties["rows"].items  # type: ignore[index,union-attr]
APPEND_JSON_REQUEST_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["rows"],
    additional_properties=False,
    description=GeoRowsAppend.__doc__,
    properties={
        "rows": Schema(type=OpenAPIType.ARRAY, min_items=1, description="One row per (geo, date).", items=_ROW_SCHEMA)
    },
)
CSV_EXAMPLE = (
    "date,geo,kpi,spend\n2021-01-01,chicago,3300,120.5\n2021-01-02,chicago,3202,118.0\n"
    "2021-01-01,portland,1510,60.0\n2021-01-02,portland,1498,61.5\n"
)


CREATE_GEO_DATASET_OPERATION = json_or_csv_operation(
    'JSON `{"name", "rows": [{"date", "geo", "kpi", "spend"}]}`, or `text/csv` with a header line naming the '
    "columns `date`, `geo`, `kpi` and optionally `spend` in any order (`?name=` names it), streamed, any size.",
    JSON_REQUEST_SCHEMA,
    {"two-markets": UPLOAD_EXAMPLES[0]},
    "A header line `date,geo,kpi[,spend]` (any order), then one row per market and date.",
    {"csv": Example(summary="Two markets, two days (CSV)", value=CSV_EXAMPLE)},
)


APPEND_GEO_DATASET_ROWS_OPERATION = json_or_csv_operation(
    'JSON `{"rows": [{"date", "geo", "kpi", "spend"}]}`, or `text/csv` with a header line naming the columns '
    "`date`, `geo`, `kpi` and optionally `spend` in any order, streamed, any size: the upload's forms and checks.",
    APPEND_JSON_REQUEST_SCHEMA,
    {"next-day": APPEND_EXAMPLES[0]},
    "A header line `date,geo,kpi[,spend]` (any order), then one row per market and date.",
    {
        "csv": Example(
            summary="The next day of two markets (CSV)",
            value="date,geo,kpi\n2021-04-16,chicago,3350\n2021-04-16,portland,1502\n",
        )
    },
)

DatasetVersionParameter = Annotated[
    int | None,
    QueryParameter(
        ge=1,
        le=2**31 - 1,
        description="Read the dataset as it was at this version (1 is the upload, each append the next); default "
        "the latest. 400 naming `dataset_version` when the dataset has no such version.",
    ),
]


DateFormatParameter = Annotated[
    str | None,
    QueryParameter(
        min_length=2,
        max_length=100,
        pattern=NO_NUL,
        description="How the dates are written, strftime style (`%m/%d/%Y`, `%d.%m.%Y`, `%Y%m%d`), for CSV "
        "and JSON alike; `YYYY-MM-DD` (a midnight time allowed) when absent.",
    ),
]


async def _json_body(upload: Upload, refusal: str) -> bytes:
    """The body of a JSON upload; 400 naming ``body`` with ``refusal`` when it is empty or ``null``."""
    body = await upload.json_body()
    if body.strip() in (b"", b"null"):
        raise invalid_field("body", refusal)
    return body


class GeoDatasetController(Controller):
    path = "/v1/geo/datasets"
    tags = ["geo"]

    @post(
        operation_id="CreateGeoDataset",
        operation_class=CREATE_GEO_DATASET_OPERATION,
        summary="Upload a geo panel",
        description="Stores a panel of `date, geo, kpi[, spend]`: either streamed as `text/csv` with a header "
        'line (columns in any order; `?name=` names it) or as JSON `{"name", "rows": [...]}`. Returns the '
        "markets, the date range and data-quality findings (missing dates per market, runs of zeros, robust "
        "outliers). Refused with 400 naming the row and column (`rows[12].kpi` or `line 13, column kpi`): "
        "unparsable dates or numbers (dates as `?date_format=` says, else `YYYY-MM-DD`), a repeated (geo, "
        "date), a negative KPI, fewer than 2 markets, two markets that differ only by case. The rows "
        "are written in one transaction: a refused upload stores nothing.",
        status_code=HTTP_201_CREATED,
        request_max_body_size=None,  # the upload is capped by the app's settings (api.http.request_bodies.Upload)
        opt={"accepts": JSON_OR_CSV},
        responses=problem_responses(400, 413, 415, 503),
    )
    async def create(
        self,
        pool: NamedDependency[asyncpg.Pool],
        upload: NamedDependency[Upload],
        name: Annotated[
            str | None,
            QueryParameter(
                min_length=1, max_length=200, pattern=NO_NUL, description="Name of a CSV upload (JSON: `name`)."
            ),
        ] = None,
        date_format: DateFormatParameter = None,
    ) -> Response[GeoDataset]:
        if upload.is_csv:
            dataset = await service.create_dataset_from_csv(pool, name, upload.csv_stream(), date_format)
        else:
            body = await _json_body(upload, "send the panel as JSON rows or as text/csv")
            if date_format is None:
                data = decode_json_body(body, GeoDatasetUpload)
            else:
                data = panel_from_text_dates(decode_json_body(body, GeoDatasetTextDates), date_format)
            if data.name is None and name is not None:
                data = GeoDatasetUpload(rows=data.rows, name=name)
            dataset = await service.create_dataset_from_json(pool, data)
        return Response(dataset, status_code=HTTP_201_CREATED, headers={"Location": f"{self.path}/{dataset.id}"})

    @get(
        "/{dataset_id:uuid}",
        operation_id="GetGeoDataset",
        operation_class=ExampleOperation,
        summary="Get a geo panel's metadata",
        description="The markets, date range, row count and the data-quality findings computed at upload.",
        responses=problem_responses(400, 404, 503),
    )
    async def get_dataset(
        self,
        pool: NamedDependency[asyncpg.Pool],
        dataset_id: FromPath[UUID],
        dataset_version: DatasetVersionParameter = None,
    ) -> GeoDataset:
        return await service.get_dataset(pool, dataset_id, dataset_version)

    @get(
        operation_id="ListGeoDatasets",
        operation_class=ExampleOperation,
        summary="List geo panels",
        description="Newest first, `limit` per page (pass `next_cursor` back as `cursor` for the next page); `name` "
        "keeps those whose name contains it (any case). Each with its markets, first and last date and number of "
        "versions, as of its latest version.",
        responses=problem_responses(400, 503),
    )
    async def list_datasets(
        self,
        pool: NamedDependency[asyncpg.Pool],
        name: Annotated[
            str | None,
            QueryParameter(min_length=1, max_length=200, pattern=NO_NUL, description="Part of the name, any case."),
        ] = None,
        cursor: Annotated[
            str | None, QueryParameter(max_length=200, description="`next_cursor` from the previous page.")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200, description="Page size.")] = 50,
    ) -> GeoDatasetPage:
        return await service.list_datasets(pool, name=name, cursor=cursor, limit=limit)

    @post(
        "/{dataset_id:uuid}/rows",
        operation_id="AppendGeoDatasetRows",
        operation_class=APPEND_GEO_DATASET_ROWS_OPERATION,
        summary="Append rows to a geo panel (a new version)",
        description="Adds market-dates to a stored panel (a test's days as they arrive) as its next `version`, with "
        "the upload's forms, header mapping and checks. New markets may appear (their earlier dates are gaps, "
        "reported in `dataset.quality`), and dates before the first one (a longer history). A market-date the "
        "dataset already holds is refused (409 naming the first few, nothing written) unless "
        "`on_conflict=replace`, which records the rows as corrections: the earlier values stay readable with "
        "`dataset_version`. Refused with 400 naming the row and column as an upload is. One transaction: a "
        "refused append stores nothing. `Idempotency-Key` makes a retried append add nothing (the first answer is "
        "replayed).",
        status_code=HTTP_201_CREATED,
        request_max_body_size=None,  # capped by the app's settings (api.http.request_bodies.Upload)
        opt={"accepts": JSON_OR_CSV},
        responses=problem_responses(400, 404, 409, 413, 415, 503),
    )
    async def append_rows(
        self,
        pool: NamedDependency[asyncpg.Pool],
        upload: NamedDependency[Upload],
        dataset_id: FromPath[UUID],
        on_conflict: Annotated[
            Literal["error", "replace"],
            QueryParameter(
                description="A market-date the dataset already holds: `error` (409) or `replace` (a correction)."
            ),
        ] = "error",
        date_format: DateFormatParameter = None,
    ) -> Response[GeoDatasetAppend]:
        key = upload.request.headers.get("idempotency-key")
        if upload.is_csv:
            appended = await service.append_rows_from_csv(
                pool, dataset_id, upload.csv_stream(), on_conflict, key, date_format
            )
        else:
            body = await _json_body(upload, "send the rows as JSON or as text/csv")
            if date_format is None:
                data = decode_json_body(body, GeoRowsAppend)
            else:
                text = decode_json_body(body, GeoRowsAppendTextDates)
                data = GeoRowsAppend(rows=panel_from_text_dates(GeoDatasetTextDates(rows=text.rows), date_format).rows)
            appended = await service.append_rows_from_json(pool, dataset_id, data, on_conflict, key)
        location = f"{self.path}/{dataset_id}?dataset_version={appended.appended.version}"
        return Response(appended, status_code=HTTP_201_CREATED, headers={"Location": location})

    @get(
        "/{dataset_id:uuid}/versions",
        operation_id="ListGeoDatasetVersions",
        operation_class=ExampleOperation,
        summary="List a geo panel's versions",
        description="Every version, oldest first: the upload (1) and each append, with the rows it added and "
        "replaced, their dates, the markets it brought, the API key that wrote it and when, and the dataset's "
        "markets, dates and rows as of it. Pass `dataset_version` to any endpoint that reads the panel to answer "
        "as of one of them.",
        responses=problem_responses(400, 404, 503),
    )
    async def list_versions(
        self, pool: NamedDependency[asyncpg.Pool], dataset_id: FromPath[UUID]
    ) -> GeoDatasetVersions:
        return await service.list_versions(pool, dataset_id)

    @get(
        "/{dataset_id:uuid}/series",
        operation_id="GetGeoDatasetSeries",
        operation_class=ExampleOperation,
        summary="Get a geo panel's rows",
        description="The stored rows of one market (`geo`), or of every market when `geo` is absent, by market "
        "then date.",
        responses=problem_responses(400, 404, 503),
    )
    async def get_series(
        self,
        pool: NamedDependency[asyncpg.Pool],
        dataset_id: FromPath[UUID],
        geo: Annotated[
            str | None, QueryParameter(min_length=1, max_length=200, description="One market's name.")
        ] = None,
        dataset_version: DatasetVersionParameter = None,
    ) -> GeoSeries:
        return await service.get_series(pool, dataset_id, geo, dataset_version)
