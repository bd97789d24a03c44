"""An experiment's results as one computation, the same in a request and in a queued job.

A request runs :func:`compute_results` itself when it is quick; otherwise the ``experiment_results``
job carries a :class:`ResultsQuery` to a worker, whose task (:func:`results_task`) runs the same
function and stores its answer.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg
import msgspec

from api.experiments.service import fetch_experiment_row
from api.geo.results import compute_geo_results, load_geo_run
from api.geo.schemas import GeoMethod, GeoResults, MultiCellGeoResults
from api.jobs.progress import ProgressReporter
from api.jobs.tasks import TaskContext
from api.results.holdout import holdout_results
from api.results.schemas import HoldoutResults

RESULTS_TASK = "experiment_results"


class ResultsQuery(msgspec.Struct, frozen=True):
    """What the results of an experiment are asked with (the query parameters of the endpoint)."""

    experiment_id: UUID
    confidence_level: float | None = None
    method: GeoMethod | None = None
    sequential: bool = False
    minimum_lift: float | None = None


async def compute_results(
    pool: asyncpg.Pool, query: ResultsQuery, progress: ProgressReporter
) -> HoldoutResults | GeoResults | MultiCellGeoResults:
    """Holdout or geo results of the experiment (404 unknown, 409 without the data they need)."""
    async with pool.acquire() as connection:
        experiment = await fetch_experiment_row(connection, query.experiment_id)
    if experiment["kind"] == "geo":
        async with pool.acquire() as connection:
            run = await load_geo_run(
                connection, experiment, query.method or "synthetic_control", query.confidence_level or 0.9
            )
        return await compute_geo_results(run, progress=progress)  # no connection held meanwhile
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("SET LOCAL statement_timeout = 0")  # slow calls become jobs instead
        return await holdout_results(
            connection,
            experiment,
            confidence_level=query.confidence_level or 0.95,
            sequential=query.sequential,
            minimum_lift=query.minimum_lift,
        )


async def results_task(context: TaskContext) -> bytes:
    """The ``experiment_results`` job: the same computation, its answer as JSON."""
    query = msgspec.json.decode(context.payload, type=ResultsQuery)
    return msgspec.json.encode(await compute_results(context.pool, query, context.progress))
