"""Calibration exports in the audit trail, with the rows the reader was handed."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from api.audit import service as audit
from api.calibration.schemas import CalibrationExport, MeridianCalibration, RobynCalibration


def calibration_headline(export: CalibrationExport) -> dict[str, Any]:
    """The format, the kind of ROI and the rows (or Meridian's arguments) the reader was handed."""
    rows: Any
    if isinstance(export, RobynCalibration):
        rows = export.calibration_input
    elif isinstance(export, MeridianCalibration):
        rows = export.experiment_results
    else:
        rows = export.df_lift_test
    headline: dict[str, Any] = msgspec.to_builtins(
        {"roi_kind": export.context.roi_kind, "kpi_type": export.context.kpi_type, "rows": rows}
    )
    return {"format": type(export).__struct_config__.tag, **headline}


async def record_calibration_read(pool: asyncpg.Pool, experiment_id: UUID, export: CalibrationExport) -> None:
    """Record that the caller was handed this calibration export."""
    async with pool.acquire() as connection:
        await audit.record(connection, experiment_id, "calibration_exported", calibration_headline(export))


async def record_calibration_requested(pool: asyncpg.Pool, experiment_id: UUID, job_id: str, fmt: str) -> None:
    """Record that the caller asked for an export computed as a job (its figures are in the job)."""
    async with pool.acquire() as connection:
        await audit.record(connection, experiment_id, "calibration_requested", {"job_id": job_id, "format": fmt})
