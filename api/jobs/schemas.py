"""The job resource."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta, Struct

from api.errors import Problem
from api.geo.schemas import GeoResults
from api.results.schemas import HoldoutResults


class Job(Struct, frozen=True):
    """A computation that outlasted its request. Poll `GET /v1/jobs/{id}` until `status` is final."""

    id: str
    kind: Annotated[
        str, Meta(description="What is computed, e.g. `experiment_results`.", examples=["experiment_results"])
    ]
    subject: Annotated[str, Meta(description="The path of the resource the job answers for.")]
    status: Annotated[
        Literal["running", "succeeded", "failed"],
        Meta(description="`running` until the result (`succeeded`) or a problem (`failed`) is stored."),
    ]
    progress: Annotated[float, Meta(ge=0.0, le=1.0, description="Fraction done, 0 to 1; 1 once succeeded.")]
    created_at: datetime
    updated_at: Annotated[datetime, Meta(description="The worker's last report (progress or end).")]
    finished_at: datetime | None
    result: Annotated[
        HoldoutResults | GeoResults | None, Meta(description="The answer the request would have given, when done.")
    ] = None
    error: Annotated[
        Problem | None, Meta(description="The RFC 9457 problem the request would have answered with, if failed.")
    ] = None
