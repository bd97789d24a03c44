"""Answer within the request when the work is quick; otherwise queue it as a job and answer ``202``.

The computation starts in the request's process (numerics in a worker thread). If it ends within the
wait budget (``COUNTERFACT_JOB_AFTER_SECONDS``, 2 s by default, or the client's ``Prefer: wait=N``;
``Prefer: respond-async`` alone means 0) its answer, or its 4xx, is the response. Otherwise it is
stopped and the same work is queued for a ``counterfact worker`` with a payload that says what to
compute: a worker starts it afresh, so nothing runs twice to completion and nothing is lost if this
process ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Annotated, Generic, TypeVar

import asyncpg
from litestar import Response
from litestar.datastructures import ResponseHeader
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from api.jobs.progress import ProgressReporter, preferred_wait
from api.jobs.queue import get_job, submit_job
from api.jobs.schemas import Job

T = TypeVar("T")


PreferHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Prefer",
        description="RFC 7240: `respond-async` answers 202 with a job at once; `wait=N` waits up to N "
        "seconds (default 2) before turning the computation into a job.",
    ),
]
"""The ``Prefer`` header of every endpoint that answers within the request or turns into a job."""

KEPT_ANSWER_HEADERS = [
    ResponseHeader(
        name="Age",
        documentation_only=True,
        description="Seconds since a kept answer was computed (absent when computed for this request).",
    ),
    ResponseHeader(
        name="Last-Modified",
        documentation_only=True,
        description="When a kept answer was computed (absent when computed for this request).",
    ),
]
"""The headers of an answer that may be kept (:mod:`api.jobs.questions`), as :func:`answer_response` sets them."""


def job_spec(description: str) -> ResponseSpec:
    """The OpenAPI declaration of a response that is a job (a ``202`` still computing, a ``200`` finished)."""
    return ResponseSpec(data_container=Job, generate_examples=False, description=description)


def wait_budget(prefer: str | None, default_seconds: float) -> float:
    """Seconds to compute within the request: what ``Prefer`` asks (:func:`preferred_wait`), else the
    service's ``COUNTERFACT_JOB_AFTER_SECONDS`` (``default_seconds``)."""
    wait = preferred_wait(prefer)
    return default_seconds if wait is None else wait


class Answer(Generic[T]):
    """Either the computation's value (``value``) or the job now computing it (``job``); ``computed_at`` when
    the value is a kept answer (:mod:`api.jobs.questions`) rather than computed for this request."""

    def __init__(self, value: T | None = None, job: Job | None = None, computed_at: datetime | None = None) -> None:
        self.value = value
        self.job = job
        self.computed_at = computed_at


async def submit(pool: asyncpg.Pool, queue_pool: asyncpg.Pool, kind: str, subject: str, payload: bytes) -> Job:
    """Queue a job (always); the stored job."""
    job_id = await submit_job(queue_pool, kind, subject, payload)
    async with pool.acquire() as connection:
        job = await get_job(connection, job_id)
    assert job is not None
    return job


async def answer_or_submit(
    pool: asyncpg.Pool,
    queue_pool: asyncpg.Pool,
    kind: str,
    subject: str,
    payload: bytes,
    compute: Callable[[ProgressReporter], Awaitable[T]],
    wait_seconds: float,
) -> Answer[T]:
    """``compute``'s value if it ends within ``wait_seconds``, else the queued job (``kind`` + ``payload``)."""
    if wait_seconds > 0:
        progress = ProgressReporter()
        task = asyncio.ensure_future(compute(progress))
        try:
            await asyncio.wait({task}, timeout=wait_seconds)
        except BaseException:
            progress.cancel()
            task.cancel()
            raise
        if task.done():
            return Answer(value=task.result())
        progress.cancel()
        task.cancel()
    return Answer(job=await submit(pool, queue_pool, kind, subject, payload))


def job_response(answer: Answer[Job]) -> Response[Job]:
    """Work that is always a job: ``202 Accepted`` with the job now computing it, or ``200`` with the finished
    job that already answered the question, its age stated as a kept answer's; ``Location`` names the job."""
    if answer.job is not None:
        return answer_response(answer)
    assert answer.value is not None
    response = answer_response(answer)
    response.headers["Location"] = f"/v1/jobs/{answer.value.id}"
    response.status_code = HTTP_200_OK
    return response


def answer_response(answer: Answer[T]) -> Response[T]:
    """The value as the response, or ``202 Accepted`` with the job and its ``Location``. A kept answer states
    its age in seconds (``Age``, RFC 9111) and when it was computed (``Last-Modified``)."""
    if answer.job is not None:
        return Response(
            answer.job,  # type: ignore[arg-type]
            status_code=HTTP_202_ACCEPTED,
            headers={"Location": f"/v1/jobs/{answer.job.id}"},
        )
    assert answer.value is not None
    if answer.computed_at is not None:
        age = max(0, int((datetime.now(UTC) - answer.computed_at).total_seconds()))
        return Response(
            answer.value, headers={"Age": str(age), "Last-Modified": format_datetime(answer.computed_at, usegmt=True)}
        )
    return Response(answer.value)
