"""HTTP endpoints of the geo datasets resource."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import asyncpg
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.openapi.spec import Example
from litestar.params import Body, FromPath, QueryParameter
from litestar.status_codes import HTTP_201_CREATED
from litestar.types import Empty

from api.errors import invalid_field, problem_responses
from api.geo import service
from api.geo.schemas import GeoDataset, GeoDatasetUpload, GeoSeries
from api.json_depth import DepthCheckedRequest
from api.openapi_examples import ExampleOperation
from api.request_bodies import CSV_MEDIA_TYPE, media_type
from api.settings import get_settings

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


def _is_csv(request: Request[Any, Any, Any]) -> bool:
    return media_type(request) == CSV_MEDIA_TYPE


class GeoUploadRequest(DepthCheckedRequest):
    """A request whose CSV body is left to stream to the handler instead of being read as JSON.

    The handler's body limit is the streaming cap; a JSON body keeps the app's ordinary cap.
    """

    async def body(self) -> bytes:
        if _is_csv(self):
            return b""
        if self._body is not Empty:
            return self._body
        if (stored := self._connection_state.body) is not Empty:
            self._body = stored
            return stored
        limit = getattr(self.app, "request_max_body_size", None) or get_settings().max_body_bytes
        announced = self.content_length
        if announced is not None and announced > limit:
            raise RequestEntityTooLarge
        chunks: list[bytes] = []
        total = 0
        async for chunk in self.stream():
            total += len(chunk)
            if total > limit:
                raise RequestEntityTooLarge
            chunks.append(chunk)
        body = b"".join(chunks)
        self._body = self._connection_state.body = body
        return body


class GeoDatasetController(Controller):
    path = "/v1/geo/datasets"
    tags = ["geo"]

    @post(
        operation_id="CreateGeoDataset",
        operation_class=ExampleOperation,
        summary="Upload a geo panel",
        description="Stores a panel of `date, geo, kpi[, spend]`: either streamed as `text/csv` with a header "
        'line (columns in any order; `?name=` names it) or as JSON `{"name", "rows": [...]}`. Returns the '
        "markets, the date range and data-quality findings (missing dates per market, runs of zeros, robust "
        "outliers). Refused with 400 naming the row and column (`rows[12].kpi` or `line 13, column kpi`): "
        "unparsable dates or numbers, a repeated (geo, date), a negative KPI, fewer than 2 markets. The rows "
        "are written in one transaction: a refused upload stores nothing.",
        status_code=HTTP_201_CREATED,
        request_class=GeoUploadRequest,
        request_max_body_size=get_settings().max_stream_bytes or None,
        opt={"accepts": ("application/json", CSV_MEDIA_TYPE)},
        responses=problem_responses(400, 413, 415, 503),
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[asyncpg.Pool],
        data: Annotated[
            GeoDatasetUpload | None,
            Body(
                examples=UPLOAD_EXAMPLES,
                description="The panel as JSON rows; or send the same columns as `text/csv` with a header line.",
            ),
        ] = None,
        name: Annotated[
            str | None,
            QueryParameter(
                min_length=1, max_length=200, pattern=r"^[^\x00]*$", description="Name of a CSV upload (JSON: `name`)."
            ),
        ] = None,
    ) -> Response[GeoDataset]:
        if _is_csv(request):
            dataset = await service.create_dataset_from_csv(pool, name, request.stream())
        elif data is None:
            raise invalid_field("body", "send the panel as JSON rows or as text/csv")
        else:
            upload = data if data.name is not None or name is None else GeoDatasetUpload(rows=data.rows, name=name)
            dataset = await service.create_dataset_from_json(pool, upload)
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
