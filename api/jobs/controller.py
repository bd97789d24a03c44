"""``GET /v1/jobs/{id}`` and ``DELETE /v1/jobs/{id}``: a queued computation's progress, answer or problem."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import asyncpg
import msgspec
from litestar import Controller, Response, delete, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.status_codes import HTTP_200_OK

from api.charts.images import ChartFormatParameter, ChartOperation, chart_image
from api.http.errors import Conflict, NotFound, problem_responses
from api.jobs.listing import list_jobs
from api.jobs.queue import cancel_job, get_job
from api.jobs.schemas import Job, JobKind, JobPage, JobStatus
from api.openapi.examples import ExampleOperation


def result_chart(job: Job) -> dict[str, Any]:
    """The Vega-Lite chart of a succeeded job's result (kept as the JSON it was stored as)."""
    if job.status != "succeeded":
        raise Conflict(f"Job {job.id} is {job.status}: only a succeeded job's result has a chart")
    result = msgspec.to_builtins(job.result)
    chart = result.get("chart") if isinstance(result, dict) else None
    if not isinstance(chart, dict) or not chart:
        raise Conflict(f"The result of job {job.id} ({job.kind}) has no chart")
    return chart


class JobController(Controller):
    path = "/v1/jobs"
    tags = ["jobs"]

    @get(
        operation_id="ListJobs",
        operation_class=ExampleOperation,
        summary="List jobs",
        description="Jobs newest first, `limit` per page (pass `next_cursor` back as `cursor`), optionally of one "
        "`kind` and `status`; each without its result (`GET /v1/jobs/{id}` has it). Finished jobs are kept 30 days.",
        responses=problem_responses(400, 503),
    )
    async def list(
        self,
        pool: NamedDependency[asyncpg.Pool],
        kind: Annotated[JobKind | None, QueryParameter(description="Only jobs of this kind.")] = None,
        status: Annotated[JobStatus | None, QueryParameter(description="Only jobs in this status.")] = None,
        cursor: Annotated[
            str | None, QueryParameter(max_length=200, description="`next_cursor` from the previous page.")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200, description="Page size.")] = 50,
    ) -> JobPage:
        return await list_jobs(pool, kind=kind, status=status, cursor=cursor, limit=limit)

    @get(
        "/{job_id:uuid}",
        operation_id="GetJob",
        operation_class=ChartOperation,
        summary="A job's status, progress and result",
        description="Work that can run longer than about 2 s (geo results on large panels, results over millions "
        "of unit-level outcomes, geo power on long histories) and every market selection run as jobs on a "
        "PostgreSQL queue, executed by `counterfact worker` processes on any machine that reaches the database. "
        "The request answers `202 Accepted` with the job and a `Location` header pointing here. Poll until "
        "`status` is `succeeded` (the answer is in `result`, exactly as the request would have returned it), "
        "`failed` (the RFC 9457 problem is in `error`; a worker that died is replaced by another, at most "
        "`COUNTERFACT_JOB_MAX_ATTEMPTS` times) or `cancelled`. Jobs are kept 30 days after they finish."
        "\n\n`?format=svg` or `png`: the chart of a succeeded job's result as an image (409 while the job has "
        "none: not finished, failed or cancelled).",
        responses=problem_responses(400, 404, 409, 503),
    )
    async def get_job(
        self, pool: NamedDependency[asyncpg.Pool], job_id: FromPath[UUID], format: ChartFormatParameter = "json"
    ) -> Response[Job]:
        async with pool.acquire() as connection:
            job = await get_job(connection, job_id)
        if job is None:
            raise NotFound(f"No job with id {job_id}")
        if format == "json":
            return Response(job)
        return await chart_image(result_chart(job), format)

    @delete(
        "/{job_id:uuid}",
        operation_id="CancelJob",
        operation_class=ExampleOperation,
        opt={"scope": "write"},  # stopping one's own computation is no deletion of data
        summary="Cancel a job",
        description="A queued job never starts; a running one stops at its next progress report (every part of a "
        "market selection with it). Answers the job, now `cancelled`; a job that already ended is answered as it "
        "is, unchanged (cancelling is idempotent).",
        status_code=HTTP_200_OK,
        responses=problem_responses(400, 404, 503),
    )
    async def cancel(self, pool: NamedDependency[asyncpg.Pool], job_id: FromPath[UUID]) -> Job:
        async with pool.acquire() as connection:
            job = await cancel_job(connection, job_id)
        if job is None:
            raise NotFound(f"No job with id {job_id}")
        return job
