"""``GET /v1/experiments/{id}/events`` and ``GET /v1/geo/datasets/{id}/events``: the audit trails of
experiments and geo datasets (read only, by design)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import asyncpg
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from api.audit import service
from api.audit.schemas import AuditEventPage, GeoDatasetEventPage
from api.http.errors import problem_responses
from api.openapi.examples import ExampleOperation

Cursor = Annotated[str | None, QueryParameter(max_length=20, description="`next_cursor` from the previous page.")]
Limit = Annotated[int, QueryParameter(ge=1, le=500, description="Page size.")]


class AuditController(Controller):
    path = "/v1/experiments"
    tags = ["experiments"]

    @get(
        "/{experiment_id:uuid}/events",
        operation_id="ListExperimentEvents",
        operation_class=ExampleOperation,
        summary="Who did what to an experiment, and when",
        description="The audit trail, oldest first: created, status and design changes, assignments loaded, "
        "observations, outcomes and spend stored (with counts), results read (with their headline figures), "
        "deleted. Each event names the API key that acted (its id and name, never the key). Events are "
        "written in the transaction of the change they record and cannot be changed or removed through the "
        "API; those of a deleted experiment stay readable.",
        responses=problem_responses(400, 404, 503),
    )
    async def list_events(
        self,
        pool: NamedDependency[asyncpg.Pool],
        experiment_id: FromPath[UUID],
        cursor: Cursor = None,
        limit: Limit = 100,
    ) -> AuditEventPage:
        return await service.list_experiment_events(pool, experiment_id, cursor=cursor, limit=limit)


class GeoDatasetAuditController(Controller):
    path = "/v1/geo/datasets"
    tags = ["geo"]

    @get(
        "/{dataset_id:uuid}/events",
        operation_id="ListGeoDatasetEvents",
        operation_class=ExampleOperation,
        summary="Who uploaded or deleted a geo dataset, and when",
        description="The audit trail, oldest first: created (with its name and counts of geos, dates and rows) "
        "and deleted (with the rows removed). Each event names the API key that acted (its id and name, never "
        "the key). Written in the transaction of the change; read only; those of a deleted dataset stay readable.",
        responses=problem_responses(400, 404, 503),
    )
    async def list_events(
        self,
        pool: NamedDependency[asyncpg.Pool],
        dataset_id: FromPath[UUID],
        cursor: Cursor = None,
        limit: Limit = 100,
    ) -> GeoDatasetEventPage:
        return await service.list_dataset_events(pool, dataset_id, cursor=cursor, limit=limit)
