"""Small tasks that exercise the job queue, and a worker process that runs them (``python -m tests.api.toy_tasks``).

* ``toy_sleep``: reports progress for ``payload`` tenths of a second, then answers ``{"slept": n}``;
* ``toy_timeout``: fails as a statement timeout does (``QueryCanceledError``);
* ``toy_sum_squares``: fans ``payload`` numbers out as parts (each sleeps 0.2 s and answers its square
  and the process id that computed it); the reduce answers the sum and the process ids seen.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import replace

import asyncpg
import msgspec

from api.jobs.tasks import FannedOut, TaskContext, TaskRegistry
from api.jobs.worker import run_worker
from api.settings import settings_from_environment
from api.worker_tasks import task_registry
from stats.errors import InvalidProblem


async def toy_sleep(context: TaskContext) -> dict[str, int]:
    tenths = int(context.payload.decode())
    for step in range(tenths):
        context.progress(step / tenths)
        await asyncio.sleep(0.1)
    return {"slept": tenths}


async def toy_timeout(context: TaskContext) -> None:
    raise asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout")


async def toy_sum_squares(context: TaskContext) -> FannedOut:
    numbers = msgspec.json.decode(context.payload, type=list[int])
    return await context.fan_out("toy_square", [str(n).encode() for n in numbers], "toy_total")


async def toy_square(context: TaskContext) -> bytes:
    await asyncio.sleep(0.2)
    n = int(context.payload.decode())
    return msgspec.json.encode({"square": n * n, "pid": os.getpid()})


async def toy_total(context: TaskContext, parts: list[bytes]) -> dict[str, object]:
    decoded = [msgspec.json.decode(part) for part in parts]
    return {"total": sum(d["square"] for d in decoded), "pids": sorted({d["pid"] for d in decoded})}


async def toy_fan_out(context: TaskContext) -> FannedOut:
    """Fans ``payload`` (JSON ``[part_task, count]``) out as ``count`` parts of ``part_task``."""
    part_task, count = msgspec.json.decode(context.payload, type=tuple[str, int])
    return await context.fan_out(part_task, [str(i).encode() for i in range(count)], "toy_total")


async def toy_explode(context: TaskContext) -> bytes:
    """A part that fails as a numerical dead end does (a 400 naming the field)."""
    raise InvalidProblem("effect_sizes", f"part {context.payload.decode()} cannot be computed")


async def toy_slow_part(context: TaskContext) -> bytes:
    """A part that reports progress for 6 s."""
    for step in range(60):
        context.progress(step / 60)
        await asyncio.sleep(0.1)
    return msgspec.json.encode({"square": 0, "pid": os.getpid()})


def toy_registry() -> TaskRegistry:
    """The service's tasks plus the toy ones."""
    registry = task_registry()
    registry.job("toy_sleep", toy_sleep)
    registry.job("toy_timeout", toy_timeout)
    registry.job("toy_sum_squares", toy_sum_squares)
    registry.part("toy_square", toy_square)
    registry.reduce("toy_total", toy_total)
    registry.job("toy_fan_out", toy_fan_out)
    registry.part("toy_explode", toy_explode)
    registry.part("toy_slow_part", toy_slow_part)
    return registry


if __name__ == "__main__":
    heartbeat = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    settings = replace(settings_from_environment(), job_heartbeat_timeout_seconds=heartbeat, log_level="WARNING")
    asyncio.run(run_worker(settings, toy_registry()))
