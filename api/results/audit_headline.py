"""Results reads in the audit trail, with the figures the reader was shown."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from api.audit import service as audit
from api.geo.schemas import GeoResults, MultiCellGeoResults
from api.results.schemas import HoldoutResults


def results_headline(results: HoldoutResults | GeoResults | MultiCellGeoResults) -> dict[str, Any]:
    """Per channel lift, p-value and decision (holdout), or ATT, incremental, lift and p-value (geo; per cell
    and each pair's difference for a multi-cell test)."""
    if isinstance(results, MultiCellGeoResults):
        return {
            "method": results.method,
            "confidence_level": results.confidence_level,
            "cells": [{"name": cell.name, **results_headline(cell.results)} for cell in results.cells],
            "comparisons": [msgspec.to_builtins(comparison) for comparison in results.comparisons],
        }
    if isinstance(results, GeoResults):
        return {
            "method": results.method,
            "confidence_level": results.confidence_level,
            "att": msgspec.to_builtins(results.att),
            "incremental": msgspec.to_builtins(results.incremental),
            "relative_lift": msgspec.to_builtins(results.lift.relative),
            "p_value": results.p_value,
        }
    return {
        "confidence_level": results.confidence_level,
        "sequential": results.sequential,
        "channels": [
            {
                "channel": channel.channel,
                "relative_lift": msgspec.to_builtins(channel.lift.relative),
                "p_value": channel.p_value,
                "decision": channel.decision.action,
            }
            for channel in results.channels
        ],
    }


async def record_results_read(
    pool: asyncpg.Pool, experiment_id: UUID, results: HoldoutResults | GeoResults | MultiCellGeoResults
) -> None:
    """Record that the caller was shown these results (a read changes nothing, so it has its own write)."""
    async with pool.acquire() as connection:
        await audit.record(connection, experiment_id, "results_read", results_headline(results))


async def record_results_requested(pool: asyncpg.Pool, experiment_id: UUID, job_id: str) -> None:
    """Record that the caller asked for results that are computed as a job (their figures are in the job)."""
    async with pool.acquire() as connection:
        await audit.record(connection, experiment_id, "results_requested", {"job_id": job_id})
