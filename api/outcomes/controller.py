"""``POST /v1/experiments/{id}/outcomes`` (unit-level outcomes) and ``PUT …/spend`` (channel spend)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import asyncpg
from litestar import Controller, post, put
from litestar.di import NamedDependency
from litestar.openapi.spec import Example, OpenAPIType, Schema
from litestar.params import Body, FromPath

from api.assignments.schemas import MAX_UNIT_LENGTH, UNIT_ID_PATTERN
from api.http.errors import problem_responses
from api.http.request_bodies import JSON_OR_CSV, Upload
from api.openapi.examples import ExampleOperation
from api.openapi.uploads import json_or_csv_operation
from api.outcomes import service
from api.outcomes.schemas import (
    MAX_ABS_VALUE,
    MAX_OUTCOMES_PER_REQUEST,
    OutcomesAccepted,
    SpendAccepted,
    SpendUpload,
)

_NUMBER = Schema(type=OpenAPIType.NUMBER, minimum=-MAX_ABS_VALUE, maximum=MAX_ABS_VALUE)
JSON_REQUEST_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["outcomes"],
    additional_properties=False,
    properties={
        "outcomes": Schema(
            type=OpenAPIType.ARRAY,
            min_items=1,
            max_items=MAX_OUTCOMES_PER_REQUEST,
            description="Up to 10,000 outcomes per call, each unit at most once.",
            items=Schema(
                type=OpenAPIType.OBJECT,
                required=["unit", "value"],
                additional_properties=False,
                properties={
                    "unit": Schema(
                        type=OpenAPIType.STRING,
                        min_length=1,
                        max_length=MAX_UNIT_LENGTH,
                        pattern=UNIT_ID_PATTERN,
                        description="The unit id, as assigned: 1 to 256 characters, without NUL, CR or LF.",
                    ),
                    "value": Schema(
                        type=OpenAPIType.NUMBER,
                        minimum=-MAX_ABS_VALUE,
                        maximum=MAX_ABS_VALUE,
                        description="0 or 1 for a conversion metric; any finite number for a mean metric.",
                    ),
                    "covariate": Schema(
                        one_of=[_NUMBER, Schema(type=OpenAPIType.NULL)],
                        description="Pre-period value of the metric, for CUPED: for every outcome of a call or none.",
                    ),
                },
            ),
        )
    },
)


CREATE_OUTCOMES_OPERATION = json_or_csv_operation(
    'JSON `{"outcomes": [{"unit": …, "value": …, "covariate": …}]}` (up to 10,000), or `text/csv` with the '
    "header `unit,value` or `unit,value,covariate`, streamed, any size.",
    JSON_REQUEST_SCHEMA,
    {
        "conversions": Example(
            summary="Conversions (0 or 1) with a pre-period covariate",
            value={
                "outcomes": [
                    {"unit": "u1", "value": 1, "covariate": 2},
                    {"unit": "u2", "value": 0, "covariate": 0},
                ]
            },
        ),
    },
    "Header `unit,value[,covariate]`, one unit a line.",
    {"csv": Example(summary="Revenue per unit", value="unit,value\nu1,12.5\nu2,0\n")},
)


SPEND_EXAMPLES = [
    Example(
        summary="Spend on two channels",
        value={
            "channels": [
                {"channel": "meta", "spend": 25000, "value_per_conversion": 40},
                {"channel": "search", "spend": 12000},
            ]
        },
    )
]


class OutcomeController(Controller):
    path = "/v1/experiments/{experiment_id:uuid}"
    tags = ["results"]

    @post(
        "/outcomes",
        operation_id="CreateOutcomes",
        summary="Send unit-level outcomes of a holdout experiment",
        description="One outcome per unit: `value` is 0 or 1 for a conversion (proportion) metric, any finite "
        "number for a mean metric; `covariate` is the metric's pre-period value, for CUPED. Results join them "
        "with the stored assignments in SQL and aggregate per channel and arm.\n\n"
        "**JSON**: up to 10,000 outcomes. **CSV** (`text/csv`): header `unit,value` or `unit,value,covariate`, "
        "one unit per line, streamed and loaded with `COPY`, any size.\n\n"
        "Re-sending a unit replaces its outcome (counted in `replaced`), so a nightly job can re-send "
        "everything. Units never assigned are stored, counted in `unassigned` and named in "
        "`unassigned_examples`. The request is one transaction: a bad row (400 naming `outcomes[i]` or "
        "`line N, column C`) or a unit repeated within the upload stores nothing. 409 for geo experiments "
        "and for experiments whose results come from aggregate observations.",
        opt={"accepts": JSON_OR_CSV},
        request_max_body_size=None,  # the upload is capped by the app's settings (api.http.request_bodies.Upload)
        operation_class=CREATE_OUTCOMES_OPERATION,
        status_code=200,
        responses=problem_responses(400, 404, 409, 413, 415, 503),
    )
    async def create(
        self, pool: NamedDependency[asyncpg.Pool], upload: NamedDependency[Upload], experiment_id: FromPath[UUID]
    ) -> OutcomesAccepted:
        if upload.is_csv:
            return await service.store_csv_outcomes(pool, experiment_id, upload.csv_stream())
        return await service.store_json_outcomes(pool, experiment_id, await upload.json_body())

    @put(
        "/spend",
        operation_id="PutChannelSpend",
        operation_class=ExampleOperation,
        summary="Set the spend per channel of a holdout experiment",
        description="Money spent on each channel's treated arm during the test, and for conversion metrics the "
        "value of one conversion: results then carry iROAS and cost per incremental conversion. Sending a "
        "channel again replaces its figures. Spend sent with aggregate observations takes precedence.",
        status_code=200,
        responses=problem_responses(400, 404, 409, 413, 415, 503),
    )
    async def put_spend(
        self,
        pool: NamedDependency[asyncpg.Pool],
        experiment_id: FromPath[UUID],
        data: Annotated[SpendUpload, Body(examples=SPEND_EXAMPLES)],
    ) -> SpendAccepted:
        return await service.store_spend(pool, experiment_id, data)
