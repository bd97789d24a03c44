"""The ``/metrics`` exposition: the app's request metrics, and the job queue and database pools as they are now.

Queue depth and job durations are read from the ``jobs`` table at each scrape, not counted in this
process: jobs are run by ``counterfact worker`` processes, possibly on other machines, and the table is
where every one of them reports. So every replica reports the same job figures (aggregate them with
``max``, not ``sum``), and a job's duration runs from its submission to its end — queueing included,
which is what a client waits — over the finished jobs kept for 30 days (a counter that drops when old
jobs are forgotten at start-up, which Prometheus reads as a reset). Pool figures are this process's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from itertools import accumulate

import asyncpg
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from api.metrics.repository import JobStatsRepository
from api.metrics.requests import RequestMetrics

JOB_DURATION_BOUNDS = [0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0]
ACTIVE_STATUSES = ("queued", "running")
DATABASE_TIMEOUT_S = 2.0


class Snapshot(Collector):
    """Metric families measured just before they are rendered."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def pool_families(pools: dict[str, asyncpg.Pool]) -> list[Metric]:
    """Open, idle and maximum connections of each asyncpg pool (``service``: requests; ``queue``: enqueueing)."""
    size = GaugeMetricFamily("counterfact_db_pool_connections", "Open connections of the pool.", labels=["pool"])
    idle = GaugeMetricFamily("counterfact_db_pool_idle_connections", "Open connections not in use.", labels=["pool"])
    limit = GaugeMetricFamily("counterfact_db_pool_max_connections", "The most the pool opens.", labels=["pool"])
    for name, pool in pools.items():
        size.add_metric([name], pool.get_size())
        idle.add_metric([name], pool.get_idle_size())
        limit.add_metric([name], pool.get_max_size())
    return [size, idle, limit]


def queue_depth_family(rows: Iterable[asyncpg.Record], job_kinds: tuple[str, ...]) -> Metric:
    """Queued and running jobs by kind (zero for a known kind with none, so the series always exist)."""
    depth = {(kind, status): 0 for kind in job_kinds for status in ACTIVE_STATUSES}
    depth.update({(row["kind"], row["status"]): row["jobs"] for row in rows})
    family = GaugeMetricFamily(
        "counterfact_jobs", "Jobs queued or running now, by kind and status.", labels=["kind", "status"]
    )
    for (kind, status), count in sorted(depth.items()):
        family.add_metric([kind, status], count)
    return family


def job_duration_family(rows: Iterable[asyncpg.Record]) -> Metric:
    """Histogram of finished jobs' durations by kind and final status, from the rows of ``job_durations``."""
    per_bucket: dict[tuple[str, str], list[int]] = {}
    seconds: dict[tuple[str, str], float] = {}
    for row in rows:
        key = (row["kind"], row["status"])
        counts = per_bucket.setdefault(key, [0] * (len(JOB_DURATION_BOUNDS) + 1))
        counts[row["bucket"]] += row["jobs"]
        seconds[key] = seconds.get(key, 0.0) + row["seconds"]
    family = HistogramMetricFamily(
        "counterfact_job_duration_seconds",
        "Finished jobs' time from submission to end (queueing included), by kind and final status.",
        labels=["kind", "status"],
    )
    bounds = [*(str(bound) for bound in JOB_DURATION_BOUNDS), "+Inf"]
    for key, counts in sorted(per_bucket.items()):
        family.add_metric(list(key), list(zip(bounds, accumulate(counts), strict=True)), seconds[key])
    return family


async def job_families(pool: asyncpg.Pool, job_kinds: tuple[str, ...]) -> list[Metric]:
    """Queue depth and job durations, and whether the database answered in time (without it, no job figures)."""
    up = GaugeMetricFamily("counterfact_database_up", "1 when the job figures could be read from the database.")
    try:
        async with asyncio.timeout(DATABASE_TIMEOUT_S), pool.acquire() as connection:
            repository = JobStatsRepository(connection)
            depth = await repository.queue_depth()
            durations = await repository.durations(JOB_DURATION_BOUNDS)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        up.add_metric([], 0)
        return [up]
    up.add_metric([], 1)
    return [up, queue_depth_family(depth, job_kinds), job_duration_family(durations)]


async def render_metrics(metrics: RequestMetrics, pool: asyncpg.Pool, queue_pool: asyncpg.Pool) -> bytes:
    """The Prometheus text exposition of everything ``/metrics`` reports."""
    snapshot = CollectorRegistry()
    snapshot.register(
        Snapshot(pool_families({"service": pool, "queue": queue_pool}) + await job_families(pool, metrics.job_kinds))
    )
    return generate_latest(metrics.registry) + generate_latest(snapshot)
