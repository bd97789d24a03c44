"""The job resource."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from msgspec import Meta, Struct

from api.http.errors import Problem

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
#: The tasks jobs run (``api/worker_tasks.py`` registers one for each; a test keeps the two in step).
JobKind = Literal[
    "experiment_results", "experiment_calibration", "geo_market_selection", "geo_power", "geo_matched_pairs"
]


class JobResult:
    """The answer a succeeded job holds: one of the result types the resources register with their tasks.

    Only a name here, so that ``api.jobs`` names no resource: a job keeps the JSON its task stored, and the
    document's union of the registered types (tagged by `kind`, a discriminator in the OpenAPI document) is
    drawn by :class:`api.jobs.openapi.JobResultSchema`, which the app factory hands the task registry's
    :attr:`~api.jobs.tasks.TaskRegistry.answers`.
    """


class Job(Struct, frozen=True):
    """Work that outlasted its request, run by `counterfact worker` processes. Poll until `status` is final."""

    id: str
    kind: Annotated[
        str,
        Meta(
            description="What is computed: `experiment_results`, `experiment_calibration`, "
            "`geo_market_selection`, `geo_power`, `geo_matched_pairs`.",
            examples=["experiment_results"],
        ),
    ]
    subject: Annotated[str, Meta(description="The path of the resource the job answers for.")]
    status: Annotated[
        JobStatus,
        Meta(
            description="`queued` until a worker starts it (again, when a stopping worker hands it back), "
            "`running`, then `succeeded` (the answer is in "
            "`result`), `failed` (the problem is in `error`) or `cancelled` (`DELETE /v1/jobs/{id}`)."
        ),
    ]
    progress: Annotated[float, Meta(ge=0.0, le=1.0, description="Fraction done, 0 to 1; 1 once succeeded.")]
    attempts: Annotated[
        int,
        Meta(
            ge=0,
            description="Times a worker started it (more than 1 when a worker died and another took over); a "
            "start a stopping worker handed back (SIGTERM) is not counted.",
        ),
    ]
    created_at: datetime
    updated_at: Annotated[datetime, Meta(description="The worker's last report (progress or end).")]
    finished_at: datetime | None
    created_by: Annotated[
        UUID | None,
        Meta(description="The id of the API key whose request made the job (`counterfact keys list` names it)."),
    ]
    workspace: Annotated[str, Meta(description="The workspace it belongs to (`counterfact workspaces list`).")]
    result: Annotated[
        JobResult | None,
        Meta(
            description="The answer the request would have given, when succeeded (its schema is the operation's; "
            "`kind` says which)."
        ),
    ] = None
    error: Annotated[
        Problem | None, Meta(description="The RFC 9457 problem the request would have answered with, if failed.")
    ] = None


class JobSummary(Struct, frozen=True):
    """A job as listed: its status and progress, without its result (`GET /v1/jobs/{id}` has it)."""

    id: str
    kind: Annotated[str, Meta(description="What is computed (the `kind` filter's values).")]
    subject: Annotated[str, Meta(description="The path of the resource the job answers for.")]
    status: JobStatus
    progress: Annotated[float, Meta(ge=0.0, le=1.0)]
    attempts: Annotated[int, Meta(ge=0)]
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    created_by: UUID | None
    workspace: Annotated[str, Meta(description="The workspace it belongs to (`counterfact workspaces list`).")]


class JobPage(Struct, frozen=True):
    """One page of jobs, newest first."""

    items: list[JobSummary]
    next_cursor: Annotated[str | None, Meta(description="Pass as `cursor` for the next page; null at the end.")]
