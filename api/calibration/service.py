"""Build an experiment's calibration export in the format asked for, in a request or as a queued job.

A request computes the export itself when it is quick; otherwise the ``experiment_calibration`` job
carries a :class:`CalibrationQuery` to a worker, whose task (:func:`calibration_task`) runs the same
function and stores the export as JSON (as ``experiment_results`` does for the results).
"""

from __future__ import annotations

from uuid import UUID

import asyncpg
import msgspec

from api.calibration import formats
from api.calibration.audit_headline import record_calibration_read, record_calibration_requested
from api.calibration.measurements import measure
from api.calibration.schemas import CalibrationExport, CalibrationFormat, KpiType
from api.geo.schemas import GeoMethod
from api.jobs.answer import Answer, answer_or_submit
from api.jobs.progress import ProgressReporter
from api.jobs.tasks import TaskContext

CALIBRATION_TASK = "experiment_calibration"


class CalibrationQuery(msgspec.Struct, frozen=True):
    """What an export is asked with (the query parameters of the endpoint)."""

    experiment_id: UUID
    format: CalibrationFormat
    kpi_type: KpiType | None = None
    kpi_name: str | None = None
    method: GeoMethod | None = None
    confidence_level: float | None = None
    period_days: int = 7
    dataset_version: int | None = None


async def calibration_export(
    pool: asyncpg.Pool, query: CalibrationQuery, progress: ProgressReporter
) -> CalibrationExport:
    """The experiment's lift per channel (from its results) as ``query.format``'s input."""
    measurements = await measure(
        pool,
        query.experiment_id,
        kpi_type=query.kpi_type,
        method=query.method,
        confidence_level=query.confidence_level,
        progress=progress,
        dataset_version=query.dataset_version,
    )
    if query.format == "robyn":
        return formats.robyn(measurements, query.kpi_name)
    if query.format == "meridian":
        return formats.meridian(measurements)
    return formats.pymc_marketing(measurements, query.period_days)


async def calibration_answer(
    pool: asyncpg.Pool, queue_pool: asyncpg.Pool, query: CalibrationQuery, wait_seconds: float
) -> Answer[CalibrationExport]:
    """The export if it is built within ``wait_seconds``, else the ``experiment_calibration`` job now building
    it; either way recorded in the experiment's audit trail."""

    async def compute(progress: ProgressReporter) -> CalibrationExport:
        return await calibration_export(pool, query, progress)

    answer = await answer_or_submit(
        pool,
        queue_pool,
        CALIBRATION_TASK,
        f"/v1/experiments/{query.experiment_id}/calibration",
        msgspec.json.encode(query),
        compute,
        wait_seconds,
    )
    if answer.job is not None:
        await record_calibration_requested(pool, query.experiment_id, answer.job.id, query.format)
    else:
        assert answer.value is not None
        await record_calibration_read(pool, query.experiment_id, answer.value)
    return answer


async def calibration_task(context: TaskContext) -> bytes:
    """The ``experiment_calibration`` job: the same export, as JSON."""
    query = msgspec.json.decode(context.payload, type=CalibrationQuery)
    return msgspec.json.encode(await calibration_export(context.pool, query, context.progress))
