"""Market selection as queued work: plan, evaluate chunks on any worker, rank once every chunk is in.

The payloads are bytes: the request as JSON, the candidate plans and their evaluations as MessagePack
(exact floats, NaN included). Each step loads the panel it needs itself (workers may run on other
machines), from the per-process cache of :mod:`api.geo_design.panel`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from uuid import UUID

import asyncpg
import msgspec

from api.geo_design.panel import DesignPanel, load_design_panel
from api.geo_design.repository import MarketSelectionRepository
from api.geo_design.schemas import GeoPowerRequest, GeoPowerResult, MarketSelectionRequest, MarketSelectionResult
from api.geo_design.service import (
    GEO_POWER_TASK,
    MARKET_SELECTION_TASK,
    compute_geo_power,
    evaluate_selection_chunk,
    geo_power_question,
    plan_selection,
    scaled_progress,
    selection_result,
)
from api.jobs.questions import keep_answer
from api.jobs.tasks import FannedOut, TaskContext, TaskRegistry
from stats.geo.market_selection import CandidatePlan, DesignEvaluation

CHUNK_TASK = "geo_market_selection_chunk"
RANK_TASK = "geo_market_selection_rank"
# Candidates per chunk: small enough that two workers share a selection evenly, large enough that a
# chunk's fixed cost (a task round trip, the panel from the cache) stays negligible.
CHUNK_CANDIDATES = 24
MIN_CHUNKS = 4
# The share of a geo power job's progress its panel's reading takes (the rest is the simulation).
PANEL_LOAD_SHARE = 0.1


class ChunkPayload(msgspec.Struct, frozen=True):
    """One chunk of a market selection: the request and the candidate sets to evaluate."""

    request: MarketSelectionRequest
    plans: list[CandidatePlan]


def chunk_plans(plans: Sequence[CandidatePlan]) -> list[list[CandidatePlan]]:
    """Chunks of about ``CHUNK_CANDIDATES`` candidates, at least ``MIN_CHUNKS`` of them when there are enough."""
    count = max(min(MIN_CHUNKS, len(plans)), -(-len(plans) // CHUNK_CANDIDATES), 1)
    size = -(-len(plans) // count) if plans else 1
    return [list(plans[i : i + size]) for i in range(0, len(plans), size)] or [[]]


async def _panel(pool: asyncpg.Pool, request: MarketSelectionRequest) -> DesignPanel:
    async with pool.acquire() as connection:
        return await load_design_panel(connection, request.dataset_id, request.history, request.dataset_version)


async def plan_chunks(pool: asyncpg.Pool, payload: bytes) -> list[bytes]:
    """The parent step: candidates for the request, split into chunk payloads."""
    request = msgspec.json.decode(payload, type=MarketSelectionRequest)
    panel = await _panel(pool, request)
    plans = await asyncio.to_thread(plan_selection, request, panel)
    return [msgspec.msgpack.encode(ChunkPayload(request=request, plans=chunk)) for chunk in chunk_plans(plans)]


async def evaluate_chunk(pool: asyncpg.Pool, payload: bytes, progress: Callable[[float], None]) -> bytes:
    """One chunk: the simulated power of its candidates, as MessagePack."""
    chunk = msgspec.msgpack.decode(payload, type=ChunkPayload)
    panel = await _panel(pool, chunk.request)
    evaluations = await asyncio.to_thread(evaluate_selection_chunk, chunk.request, panel, chunk.plans, progress)
    return msgspec.msgpack.encode(evaluations)


async def rank_chunks(pool: asyncpg.Pool, job_id: UUID, payload: bytes, parts: Sequence[bytes]) -> bytes:
    """The last step: every chunk's evaluations ranked into the result (JSON), kept for experiments to link to."""
    request = msgspec.json.decode(payload, type=MarketSelectionRequest)
    panel = await _panel(pool, request)
    evaluations = [e for part in parts for e in msgspec.msgpack.decode(part, type=list[DesignEvaluation])]
    result = await asyncio.to_thread(selection_result, request, panel, evaluations)
    async with pool.acquire() as connection:
        await MarketSelectionRepository(connection).save(job_id, request.dataset_id, request, result)
    return msgspec.json.encode(result)


async def market_selection_task(context: TaskContext) -> FannedOut:
    """The ``geo_market_selection`` job: plan the candidates, then fan their chunks out to the workers."""
    chunks = await plan_chunks(context.pool, context.payload)
    return await context.fan_out(CHUNK_TASK, chunks, RANK_TASK)


async def chunk_task(context: TaskContext) -> bytes:
    return await evaluate_chunk(context.pool, context.payload, context.progress)


async def rank_task(context: TaskContext, parts: list[bytes]) -> bytes:
    return await rank_chunks(context.pool, context.job_id, context.payload, parts)


async def geo_power_task(context: TaskContext) -> bytes:
    """The ``geo_power`` job: the power a request would have answered, for long histories; kept for the
    question it answers (the request on the dataset version it read)."""
    request = msgspec.json.decode(context.payload, type=GeoPowerRequest)
    loading = scaled_progress(context.progress, 0.0, PANEL_LOAD_SHARE)
    panel = await load_design_panel_from_pool(context.pool, request, loading)
    computing = scaled_progress(context.progress, PANEL_LOAD_SHARE, 1.0 - PANEL_LOAD_SHARE)
    result = await asyncio.to_thread(compute_geo_power, request, panel, computing)
    async with context.pool.acquire() as connection:
        question = geo_power_question(context.payload, request.dataset_id, panel.dataset_version)
        await keep_answer(connection, question, result)
    return msgspec.json.encode(result)


async def load_design_panel_from_pool(
    pool: asyncpg.Pool, request: GeoPowerRequest, progress: Callable[[float], None] | None = None
) -> DesignPanel:
    async with pool.acquire() as connection:
        return await load_design_panel(
            connection, request.dataset_id, request.history, request.dataset_version, progress
        )


def register_geo_design_tasks(registry: TaskRegistry) -> None:
    """The geo design tasks a worker runs."""
    registry.job(GEO_POWER_TASK, geo_power_task, answers=(GeoPowerResult,))
    registry.job(MARKET_SELECTION_TASK, market_selection_task, answers=(MarketSelectionResult,))
    registry.part(CHUNK_TASK, chunk_task)
    registry.reduce(RANK_TASK, rank_task)
