"""``POST /v1/experiments/{id}/observations``: aggregated totals per channel and arm."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import asyncpg
from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import Body, FromPath
from litestar.status_codes import HTTP_200_OK

from api.http.errors import problem_responses
from api.observations.schemas import ObservationsAccepted, ObservationsUpload
from api.observations.service import store_observations
from api.openapi.examples import ExampleOperation

EXAMPLES = [
    Example(
        summary="Conversions per channel and arm, with spend",
        value={
            "observations": [
                {
                    "channel": "meta",
                    "arm": "treatment",
                    "units": 90000,
                    "conversions": 4725,
                    "spend": 25000,
                    "value_per_conversion": 40,
                },
                {"channel": "meta", "arm": "holdout", "units": 10000, "conversions": 480},
            ]
        },
    ),
    Example(
        summary="Revenue per unit with a pre-period covariate for CUPED",
        value={
            "observations": [
                {
                    "channel": "search",
                    "arm": "treatment",
                    "units": 50000,
                    "sum": 640000,
                    "sum_squares": 95000000,
                    "covariate_sum": 600000,
                    "covariate_sum_squares": 88000000,
                    "cross_sum": 80000000,
                    "spend": 30000,
                },
                {
                    "channel": "search",
                    "arm": "holdout",
                    "units": 50000,
                    "sum": 615000,
                    "sum_squares": 91000000,
                    "covariate_sum": 601000,
                    "covariate_sum_squares": 88100000,
                    "cross_sum": 78000000,
                },
            ]
        },
    ),
]


class ObservationController(Controller):
    path = "/v1/experiments/{experiment_id:uuid}/observations"
    tags = ["results"]

    @post(
        operation_id="CreateObservations",
        operation_class=ExampleOperation,
        summary="Send a holdout experiment's totals per channel and arm",
        description="Sufficient statistics per channel and arm: `units` and `conversions` (proportion metric) or "
        "`sum` and `sum_squares` (mean metric); optional pre-period covariate sums for CUPED; `spend` (and "
        "`value_per_conversion`) on the treatment arm. Re-sending a channel/arm replaces its totals (the previous "
        "ones are kept in history), so a nightly job can re-send cumulative totals. All or nothing.",
        status_code=HTTP_200_OK,
        responses=problem_responses(400, 404, 409, 413, 415, 503),
    )
    async def create(
        self,
        pool: NamedDependency[asyncpg.Pool],
        experiment_id: FromPath[UUID],
        data: Annotated[ObservationsUpload, Body(examples=EXAMPLES)],
    ) -> ObservationsAccepted:
        return await store_observations(pool, experiment_id, data)
