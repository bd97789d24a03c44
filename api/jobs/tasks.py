"""What workers run: tasks registered by name, and the context each one receives.

A resource registers its tasks in ``api/worker_tasks.py`` (the worker's counterpart of the app factory),
with the types of the answers its job tasks give, so ``api.jobs`` names no resource. Three kinds:

* a **job task** runs a job from its payload and returns its answer (any JSON-encodable value, or JSON
  bytes), or calls :meth:`TaskContext.fan_out` and returns its :data:`FANNED_OUT` marker;
* a **part task** computes one part of a fanned-out job and returns bytes;
* a **reduce task** turns the job's payload and its parts' bytes, in order, into the job's answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg

from api.jobs.progress import ProgressReporter
from api.jobs.queue import enqueue_parts


class FannedOut:
    """Returned by a job task whose work now runs as parts: the last part to finish ends the job."""


FANNED_OUT = FannedOut()


@dataclass
class TaskContext:
    """A running task's job, payload, database pools and progress reporter."""

    pool: asyncpg.Pool
    queue_pool: asyncpg.Pool
    job_id: UUID
    payload: bytes
    progress: ProgressReporter = field(default_factory=ProgressReporter)

    async def fan_out(self, part_task: str, payloads: list[bytes], reduce_task: str) -> FannedOut:
        """Split the job into parts that any worker computes; ``reduce_task`` ends it once all are done."""
        await enqueue_parts(self.queue_pool, self.job_id, part_task, payloads, reduce_task)
        return FANNED_OUT


JobTask = Callable[[TaskContext], Awaitable[Any]]
PartTask = Callable[[TaskContext], Awaitable[bytes]]
ReduceTask = Callable[[TaskContext, list[bytes]], Awaitable[Any]]


@dataclass
class TaskRegistry:
    """The tasks a worker can run, by name."""

    jobs: dict[str, JobTask] = field(default_factory=dict)
    parts: dict[str, PartTask] = field(default_factory=dict)
    reducers: dict[str, ReduceTask] = field(default_factory=dict)
    #: Each job task's answer types (structs told apart by their ``kind`` tag).
    job_answers: dict[str, tuple[type, ...]] = field(default_factory=dict)

    def job(self, name: str, task: JobTask, answers: tuple[type, ...] = ()) -> None:
        """Register a job task and the types of the answers it gives."""
        self.jobs[name] = task
        self.job_answers[name] = answers

    @property
    def answers(self) -> list[type]:
        """What a succeeded job's ``result`` may hold, in the order registered (the document's ``oneOf``)."""
        return list(dict.fromkeys(answer for answers in self.job_answers.values() for answer in answers))

    def part(self, name: str, task: PartTask) -> None:
        self.parts[name] = task

    def reduce(self, name: str, task: ReduceTask) -> None:
        self.reducers[name] = task
