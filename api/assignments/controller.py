"""HTTP endpoints of the assignments resource (holdout experiments)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

import asyncpg
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.spec import Example, OpenAPIType, Schema
from litestar.params import FromPath, Parameter, QueryParameter
from litestar.response import Stream

from api.assignments import rule, service
from api.assignments.schemas import (
    MAX_UNIT_LENGTH,
    MAX_UNITS_PER_REQUEST,
    UNIT_ID_PATTERN,
    AssignmentBatch,
    AssignmentPage,
    AssignmentRule,
    AssignmentSummary,
    BulkAssignmentResult,
    UnitAssignment,
)
from api.http.errors import problem_responses
from api.http.request_bodies import CSV_MEDIA_TYPE, JSON_OR_CSV, Upload
from api.openapi.examples import CsvExportOperation, ExampleOperation
from api.openapi.uploads import json_or_csv_operation

HASH_DESCRIPTION = (
    "The arm is a pure function of (experiment salt, channel name, unit id) by the experiment's "
    "`assignment_rule`: `sha256` (the default) takes the first 13 hex digits of "
    '`SHA-256(UTF-8(salt + "\\x1f" + channel + "\\x1f" + unit))` as an integer `h` and the unit is `holdout` '
    "in that channel when `h < floor(holdout_fraction × 2^52 + 1/2)`; `blake2b` (older experiments) reads "
    "`u = BLAKE2b-64(…the same message)` big-endian, `fraction = (u >> 11) / 2^53`, and the unit is `holdout` "
    "when `fraction < holdout_fraction`; otherwise `treatment`. Channels hash independently. "
    "`GET /v1/experiments/{id}/assignment-rule` gives the rule and SQL that computes it in a warehouse."
)

JSON_REQUEST_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["units"],
    additional_properties=False,
    properties={
        "units": Schema(
            type=OpenAPIType.ARRAY,
            min_items=1,
            max_items=MAX_UNITS_PER_REQUEST,
            description="Up to 10,000 unit ids per call.",
            items=Schema(
                type=OpenAPIType.STRING,
                min_length=1,
                max_length=MAX_UNIT_LENGTH,
                pattern=UNIT_ID_PATTERN,
                description="1 to 256 characters, without NUL, carriage return or line feed.",
            ),
        )
    },
)


CREATE_ASSIGNMENTS_OPERATION = json_or_csv_operation(
    'JSON `{"units": [...]}` (up to 10,000), or `text/csv`: a header line `unit`, then one unit id per line '
    "(RFC 4180 quoting for ids containing commas or quotes), streamed, any size.",
    JSON_REQUEST_SCHEMA,
    {"three-users": Example(summary="Three users", value={"units": ["u1", "u2", "u3"]})},
    "`unit` header, then one unit id per line.",
    {"csv": Example(summary="Bulk CSV", value="unit\nu1\nu2\nu3\n")},
)


def wants_csv(request: Request[Any, Any, Any], format: Literal["json", "csv"] | None) -> bool:
    """``format`` when given, else what ``Accept`` prefers of JSON and CSV (JSON when it says neither)."""
    if format is not None:
        return format == "csv"
    return request.accept.best_match(["application/json", CSV_MEDIA_TYPE], "application/json") == CSV_MEDIA_TYPE


class AssignmentController(Controller):
    path = "/v1/experiments"
    tags = ["assignments"]

    @post(
        "/{experiment_id:uuid}/assignments",
        operation_id="CreateAssignments",
        summary="Assign units to arms",
        description="Returns each unit's arm in every channel of a holdout experiment. The first call stores "
        "the assignment with its timestamp; later calls return the stored arm. " + HASH_DESCRIPTION + "\n\n"
        '**JSON** (`application/json`): `{"units": [...]}`, up to 10,000 ids; the answer lists each unit '
        "once, in request order.\n\n"
        "**CSV** (`text/csv`): a header line `unit`, then one id per line; the body is streamed (millions "
        "of units), hashed in batches and loaded with `COPY`; units already assigned or repeated are "
        "skipped; the answer is a count summary (`BulkAssignmentResult`).\n\n"
        "Either way the request is one transaction: an invalid id (400 naming `units[i]` or `line N`) "
        "stores nothing. Stopped and geo experiments refuse assignments (409).",
        opt={"accepts": JSON_OR_CSV},
        request_max_body_size=None,  # the upload is capped by the app's settings (api.http.request_bodies.Upload)
        operation_class=CREATE_ASSIGNMENTS_OPERATION,
        status_code=200,
        responses=problem_responses(400, 404, 409, 413, 415, 503),
    )
    async def create(
        self, pool: NamedDependency[asyncpg.Pool], upload: NamedDependency[Upload], experiment_id: FromPath[UUID]
    ) -> AssignmentBatch | BulkAssignmentResult:
        if upload.is_csv:
            return await service.bulk_assign(pool, experiment_id, upload.csv_stream())
        decoded = service.decode_request(await upload.json_body())
        return await service.assign_units(pool, experiment_id, decoded.units)

    @get(
        "/{experiment_id:uuid}/assignments",
        operation_id="ListAssignments",
        operation_class=CsvExportOperation,
        summary="List stored assignments",
        description="`format=json` (the default): a page of units in byte order, `limit` per page; pass "
        "`next_cursor` back as `cursor`. `format=csv`: every stored unit streamed as `text/csv` with the "
        "columns `unit`, one per channel (its arm) and `assigned_at`. Without `format`, the `Accept` header "
        "chooses (`Accept: text/csv` for the CSV).",
        responses=problem_responses(400, 404, 409, 503),
    )
    async def list(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[asyncpg.Pool],
        experiment_id: FromPath[UUID],
        format: Annotated[
            Literal["json", "csv"] | None,
            QueryParameter(description="`json` pages, or the whole table as `csv`; by `Accept` when absent."),
        ] = None,
        cursor: Annotated[
            str | None, QueryParameter(max_length=400, description="`next_cursor` from the previous page.")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=10_000, description="Page size (JSON).")] = 1000,
    ) -> Response[AssignmentPage]:
        if wants_csv(request, format):
            design = await service.open_export(pool, experiment_id)
            return Stream(  # type: ignore[return-value]
                service.export_csv(pool, design),
                media_type=CSV_MEDIA_TYPE,
                headers={"Content-Disposition": f'attachment; filename="assignments-{experiment_id}.csv"'},
            )
        return Response(await service.list_page(pool, experiment_id, cursor, limit))

    @get(
        "/{experiment_id:uuid}/assignments/summary",
        operation_id="GetAssignmentSummary",
        operation_class=ExampleOperation,
        summary="Arm counts and sample-ratio mismatch",
        description="Per channel: units in each arm, the counts the planned `holdout_fraction` expects, and "
        "Pearson's chi-square goodness-of-fit test (1 df); `srm_flagged` when p < 0.001.",
        responses=problem_responses(400, 404, 409, 503),
    )
    async def summary(self, pool: NamedDependency[asyncpg.Pool], experiment_id: FromPath[UUID]) -> AssignmentSummary:
        return await service.summarize(pool, experiment_id)

    @get(
        "/{experiment_id:uuid}/assignment-rule",
        operation_id="GetAssignmentRule",
        operation_class=ExampleOperation,
        summary="The assignment rule, and SQL that computes it in a warehouse",
        description="What a caller needs to compute a holdout experiment's arms itself (an ad server, a "
        "warehouse): the rule, the salt, each channel's fraction and, for the `sha256` rule, its integer "
        "threshold and message prefix, and `sql` by dialect (`postgresql`, `duckdb`, `bigquery`, `snowflake`): a "
        "query over a table `units(unit)` returning `unit, channel, arm` for every unit in every channel, the "
        "arms the API gives. The PostgreSQL and DuckDB queries are tested against the API on a million units; "
        "the BigQuery and Snowflake ones use the same arithmetic and are untested here. `sql` is null for a "
        "`blake2b` experiment (no warehouse has BLAKE2b). 409 for a geo experiment.",
        responses=problem_responses(400, 404, 409, 503),
    )
    async def get_rule(self, pool: NamedDependency[asyncpg.Pool], experiment_id: FromPath[UUID]) -> AssignmentRule:
        return await rule.assignment_rule(pool, experiment_id)

    @get(
        "/{experiment_id:uuid}/assignments/{unit:path}",
        operation_id="GetAssignment",
        operation_class=ExampleOperation,
        summary="Get one unit's arms",
        description="The stored arms of one unit; 404 when it was never assigned, unless `assign=true`, "
        "which assigns it now (as `CreateAssignments` would). The literal unit id `summary` is read "
        "through `CreateAssignments`.",
        responses=problem_responses(400, 404, 409, 503),
    )
    async def get_unit(
        self,
        pool: NamedDependency[asyncpg.Pool],
        experiment_id: FromPath[UUID],
        unit: Annotated[str, Parameter(description="The unit id, percent-encoded; it may contain `/`.")],
        assign: Annotated[bool, QueryParameter(description="Assign the unit if it was never assigned.")] = False,
    ) -> UnitAssignment:
        return await service.get_unit(pool, experiment_id, unit.removeprefix("/"), assign=assign)
