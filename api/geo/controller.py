"""HTTP endpoints of the geo datasets resource."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import asyncpg
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.spec import Example, OpenAPIFormat, OpenAPIType, Schema
from litestar.params import FromPath, QueryParameter
from litestar.status_codes import HTTP_201_CREATED

from api.errors import invalid_field, problem_responses
from api.geo import service
from api.geo.panel_parsing import panel_from_text_dates
from api.geo.schemas import GeoDataset, GeoDatasetTextDates, GeoDatasetUpload, GeoRowIn, GeoSeries
from api.openapi_examples import ExampleOperation
from api.request_bodies import JSON_OR_CSV, Upload, decode_json_body, json_or_csv_operation
from api.text_fields import NO_NUL
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
        request_max_body_size=None,  # the upload is capped by the app's settings (api.request_bodies.Upload)
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
        date_format: Annotated[
            str | None,
            QueryParameter(
                min_length=2,
                max_length=100,
                pattern=NO_NUL,
                description="How the dates are written, strftime style (`%m/%d/%Y`, `%d.%m.%Y`, `%Y%m%d`), for CSV "
                "and JSON alike; `YYYY-MM-DD` (a midnight time allowed) when absent.",
            ),
        ] = None,
    ) -> Response[GeoDataset]:
        if upload.is_csv:
            dataset = await service.create_dataset_from_csv(pool, name, upload.csv_stream(), date_format)
        else:
            body = await upload.json_body()
            if body.strip() in (b"", b"null"):
                raise invalid_field("body", "send the panel as JSON rows or as text/csv")
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
    async def get_dataset(self, pool: NamedDependency[asyncpg.Pool], dataset_id: FromPath[UUID]) -> GeoDataset:
        return await service.get_dataset(pool, dataset_id)

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
    ) -> GeoSeries:
        return await service.get_series(pool, dataset_id, geo)
