"""Build an experiment's calibration export in the format asked for."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from api.calibration import formats
from api.calibration.measurements import measure
from api.calibration.schemas import CalibrationExport, CalibrationFormat, KpiType
from api.geo.schemas import GeoMethod


async def calibration_export(
    pool: asyncpg.Pool,
    experiment_id: UUID,
    calibration_format: CalibrationFormat,
    *,
    kpi_type: KpiType | None = None,
    kpi_name: str | None = None,
    method: GeoMethod | None = None,
    confidence_level: float | None = None,
    period_days: int = 7,
) -> CalibrationExport:
    """The experiment's lift per channel (from its results) as ``calibration_format``'s input."""
    measurements = await measure(
        pool, experiment_id, kpi_type=kpi_type, method=method, confidence_level=confidence_level
    )
    if calibration_format == "robyn":
        return formats.robyn(measurements, kpi_name)
    if calibration_format == "meridian":
        return formats.meridian(measurements)
    return formats.pymc_marketing(measurements, period_days)
