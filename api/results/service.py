"""An experiment's results: one computation, the same in a request and in a queued job.

:func:`experiment_results` answers the endpoint: it checks the experiment, runs :func:`compute_results`
within the wait budget or queues the ``experiment_results`` job (:func:`api.jobs.answer.answer_or_submit`),
and records the read in the audit trail. A worker's task (:func:`results_task`) runs the same
:func:`compute_results` from the job's :class:`ResultsQuery` and stores its answer. Holdout results are
computed by :mod:`api.results.holdout`, geo results by :mod:`api.results.geo`.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from api.db.database import Connection, lift_statement_timeout
from api.experiments.revisions import experiment_revision, geo_data_revision
from api.experiments.service import fetch_experiment_row
from api.geo.schemas import GeoMethod, GeoMissingPolicy, GeoResults, MultiCellGeoResults
from api.http.errors import invalid_field
from api.jobs.answer import Answer
from api.jobs.progress import ProgressReporter
from api.jobs.questions import Question, answer_once, ask, keep_answer
from api.jobs.tasks import TaskContext
from api.results.audit_headline import record_results_read, record_results_requested
from api.results.geo import compute_geo_results
from api.results.geo_run import load_geo_run, refuse_unpaired_trimmed_match
from api.results.holdout import holdout_results
from api.results.schemas import HoldoutResults
from stats.geo.tbr import TBRIntervalKind

RESULTS_TASK = "experiment_results"

ExperimentResults = HoldoutResults | GeoResults | MultiCellGeoResults


class ResultsQuery(msgspec.Struct, frozen=True):
    """What the results of an experiment are asked with (the query parameters of the endpoint)."""

    experiment_id: UUID
    confidence_level: float | None = None
    method: GeoMethod | None = None
    interval: TBRIntervalKind | None = None
    sequential: bool | None = None
    minimum_lift: float | None = None
    missing: GeoMissingPolicy | None = None
    dataset_version: int | None = None


async def results_question(connection: Connection, experiment: Any, query: ResultsQuery) -> Question:
    """The question a results request asks: its parameters on the experiment's settings and data as they are
    now (a geo experiment's data is its dataset's, :func:`geo_data_revision`)."""
    revision = await experiment_revision(connection, query.experiment_id)
    if experiment["kind"] == "geo":
        revision += "/" + await geo_data_revision(connection, UUID(str(experiment["design"]["dataset_id"])))
    return ask(RESULTS_TASK, msgspec.json.encode(query), query.experiment_id, revision)


async def compute_results(pool: asyncpg.Pool, query: ResultsQuery, progress: ProgressReporter) -> ExperimentResults:
    """Holdout or geo results of the experiment (404 unknown, 409 without the data they need)."""
    async with pool.acquire() as connection:
        experiment = await fetch_experiment_row(connection, query.experiment_id)
    if experiment["kind"] == "geo":
        async with pool.acquire() as connection:
            run = await load_geo_run(
                connection,
                experiment,
                query.method or "synthetic_control",
                query.confidence_level or 0.9,
                query.missing or "drop_market",
                query.interval,
                sequential=query.sequential,
                dataset_version=query.dataset_version,
            )
        return await compute_geo_results(run, progress=progress)  # no connection held meanwhile
    async with pool.acquire() as connection, connection.transaction():
        await lift_statement_timeout(connection)  # slow calls become jobs instead
        return await holdout_results(
            connection,
            experiment,
            confidence_level=query.confidence_level or 0.95,
            sequential=bool(query.sequential),
            minimum_lift=query.minimum_lift,
        )


async def experiment_results(
    pool: asyncpg.Pool, queue_pool: asyncpg.Pool, query: ResultsQuery, wait_seconds: float
) -> Answer[ExperimentResults]:
    """The results kept for this question (:mod:`api.jobs.questions`), else computed within ``wait_seconds``
    (joining an identical computation in flight), else the job now computing them; either way recorded in the
    experiment's audit trail. 404 for an unknown experiment, 400 for a geo ``method`` asked of a holdout
    experiment or ``trimmed_match`` of one without pairs, before any job is queued."""
    async with pool.acquire() as connection:
        experiment = await fetch_experiment_row(connection, query.experiment_id)
        question = await results_question(connection, experiment, query)
    if experiment["kind"] == "holdout" and query.method is not None:
        raise invalid_field("method", "applies to geo experiments only")
    if experiment["kind"] == "holdout" and query.missing is not None:
        raise invalid_field("missing", "applies to geo experiments only")
    if experiment["kind"] == "holdout" and query.dataset_version is not None:
        raise invalid_field("dataset_version", "applies to geo experiments only (they read a geo dataset)")
    if query.interval is not None and query.method != "tbr":
        raise invalid_field("interval", "chooses TBR's interval: it applies to geo experiments with method=tbr only")
    if experiment["kind"] == "geo" and query.method == "trimmed_match":
        refuse_unpaired_trimmed_match(experiment)

    async def compute(progress: ProgressReporter) -> ExperimentResults:
        return await compute_results(pool, query, progress)

    answer = await answer_once(
        pool,
        queue_pool,
        RESULTS_TASK,
        f"/v1/experiments/{query.experiment_id}/results",
        msgspec.json.encode(query),
        question,
        ExperimentResults,
        compute,
        wait_seconds,
    )
    if answer.job is not None:
        await record_results_requested(pool, query.experiment_id, answer.job.id)
    else:
        assert answer.value is not None
        await record_results_read(pool, query.experiment_id, answer.value)
    return answer


async def results_task(context: TaskContext) -> bytes:
    """The ``experiment_results`` job: the same computation, its answer as JSON, kept for the question it
    answers on the data as they were when it started."""
    query = msgspec.json.decode(context.payload, type=ResultsQuery)
    async with context.pool.acquire() as connection:
        experiment = await fetch_experiment_row(connection, query.experiment_id)
        question = await results_question(connection, experiment, query)
    results = await compute_results(context.pool, query, context.progress)
    async with context.pool.acquire() as connection:
        await keep_answer(connection, question, results)
    return msgspec.json.encode(results)
