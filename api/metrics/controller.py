"""``GET /metrics``: Prometheus' text format, open like ``/health`` (counts and timings, no data of anyone's)."""

from __future__ import annotations

import asyncpg
from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.di import NamedDependency

from api.metrics.requests import RequestMetrics
from api.metrics.service import render_metrics

# Prometheus' classic text format (Litestar adds `charset=utf-8`); every Prometheus server reads it.
TEXT_FORMAT = "text/plain; version=0.0.4"


class MetricsController(Controller):
    path = "/metrics"

    @get(include_in_schema=False, cache_control=None)
    async def metrics(
        self, state: State, pool: NamedDependency[asyncpg.Pool], queue_pool: NamedDependency[asyncpg.Pool]
    ) -> Response[bytes]:
        request_metrics: RequestMetrics = state.request_metrics
        return Response(await render_metrics(request_metrics, pool, queue_pool), media_type=TEXT_FORMAT)
