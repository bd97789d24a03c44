"""``GET /v1/jobs/{id}``: progress, then the result or the problem, of a computation that outlasted its request."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from api.errors import NotFound, problem_responses
from api.jobs.runner import JobRunner
from api.jobs.schemas import Job
from api.openapi_examples import ExampleOperation


class JobController(Controller):
    path = "/v1/jobs"
    tags = ["jobs"]

    @get(
        "/{job_id:uuid}",
        operation_id="GetJob",
        operation_class=ExampleOperation,
        summary="A job's status, progress and result",
        description="Operations that can run longer than about 2 s (geo results on large panels, results over "
        "millions of unit-level outcomes) answer `202 Accepted` with a job and a `Location` header pointing "
        "here when they do not finish in time, or at once when the client sends `Prefer: respond-async`. Poll "
        "until `status` is `succeeded` (the answer is in `result`, exactly as the original request would have "
        "returned it) or `failed` (the RFC 9457 problem is in `error`). Jobs are kept in PostgreSQL for 30 days "
        "after they finish.",
        responses=problem_responses(400, 404, 503),
    )
    async def get_job(self, jobs: NamedDependency[JobRunner], job_id: FromPath[UUID]) -> Job:
        job = await jobs.get(job_id)
        if job is None:
            raise NotFound(f"No job with id {job_id}")
        return job
