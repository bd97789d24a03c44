"""Waiting for a job of the service to finish, as a client does: by polling its ``Location``."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

FINAL_STATUSES = ("succeeded", "failed", "cancelled")
POLL_SECONDS = 0.05


async def finished_job(client: httpx.AsyncClient, location: str, seconds: float = 60.0) -> dict[str, Any]:
    """The job at ``location`` once it is succeeded, failed or cancelled (polled every 50 ms); AssertionError
    when it is still queued or running after ``seconds``."""
    for _ in range(int(seconds / POLL_SECONDS)):
        job: dict[str, Any] = (await client.get(location)).json()
        if job["status"] in FINAL_STATUSES:
            return job
        await asyncio.sleep(POLL_SECONDS)
    raise AssertionError(f"the job at {location} did not finish in {seconds:g} s")


async def succeeded_job(client: httpx.AsyncClient, location: str, seconds: float = 60.0) -> dict[str, Any]:
    """``finished_job``, asserting that the job succeeded."""
    job = await finished_job(client, location, seconds)
    assert job["status"] == "succeeded", job
    return job
