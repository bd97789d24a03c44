"""``DELETE /v1/experiments/{id}`` and ``DELETE /v1/geo/datasets/{id}`` (scope ``admin``)."""

from __future__ import annotations

from uuid import UUID

import asyncpg
from litestar import Controller, delete
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.status_codes import HTTP_200_OK

from api.http.errors import problem_responses
from api.lifecycle import service
from api.lifecycle.schemas import Deletion
from api.openapi.examples import ExampleOperation


class DeletionController(Controller):
    path = "/v1"

    @delete(
        "/experiments/{experiment_id:uuid}",
        operation_id="DeleteExperiment",
        operation_class=ExampleOperation,
        tags=["experiments"],
        summary="Delete an experiment and all its data",
        description="Removes the experiment with its channels, assignments (unit ids), outcomes, observations "
        "(and their history), spend, sequential looks and stored job results, in one transaction: all or "
        "nothing. A `running` experiment is refused (409): stop it first. The audit trail keeps the "
        "experiment's events and one `deleted` event with the rows removed per table. Needs the `admin` scope.",
        status_code=HTTP_200_OK,
        responses=problem_responses(400, 404, 409, 503),
    )
    async def delete_experiment(self, pool: NamedDependency[asyncpg.Pool], experiment_id: FromPath[UUID]) -> Deletion:
        return await service.delete_experiment(pool, experiment_id)

    @delete(
        "/geo/datasets/{dataset_id:uuid}",
        operation_id="DeleteGeoDataset",
        operation_class=ExampleOperation,
        tags=["geo"],
        summary="Delete a geo dataset and its panel",
        description="Removes the dataset, its panel rows and stored job results in one transaction. Refused "
        "(409 naming it) while a `running` experiment reads the dataset; experiments that are not running and "
        "still name it are listed in `experiments_left` (their results can no longer be computed). One "
        "`deleted` event is kept in the audit trail. Needs the `admin` scope.",
        status_code=HTTP_200_OK,
        responses=problem_responses(400, 404, 409, 503),
    )
    async def delete_geo_dataset(self, pool: NamedDependency[asyncpg.Pool], dataset_id: FromPath[UUID]) -> Deletion:
        return await service.delete_geo_dataset(pool, dataset_id)
