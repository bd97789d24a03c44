"""Matched-pair designs as queued work: a worker reads the panel's sums, designs, and keeps the result.

The payload is the request as JSON, its seed filled in by the API so that a retried job designs
(and randomizes) exactly what was asked.
"""

from __future__ import annotations

import asyncio

import msgspec

from api.geo_pairs.panel import load_pair_panel
from api.geo_pairs.repository import PairDesignRepository
from api.geo_pairs.schemas import MatchedPairsRequest, MatchedPairsResult
from api.geo_pairs.service import MATCHED_PAIRS_TASK, compute_pair_design
from api.jobs.tasks import TaskContext, TaskRegistry


async def matched_pairs_task(context: TaskContext) -> bytes:
    """The ``geo_matched_pairs`` job: every requested design, stored for experiments to link to."""
    request = msgspec.json.decode(context.payload, type=MatchedPairsRequest)
    async with context.pool.acquire() as connection:
        panel = await load_pair_panel(connection, request)
    result = await asyncio.to_thread(compute_pair_design, request, panel, context.progress)
    async with context.pool.acquire() as connection:
        await PairDesignRepository(connection).save(context.job_id, request.dataset_id, request, result)
    return msgspec.json.encode(result)


def register_matched_pairs_tasks(registry: TaskRegistry) -> None:
    """The matched-pair design task a worker runs."""
    registry.job(MATCHED_PAIRS_TASK, matched_pairs_task, answers=(MatchedPairsResult,))
