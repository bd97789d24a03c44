"""Request counts and latencies per route template, method and status, kept in the app's own registry."""

from __future__ import annotations

import re
from collections.abc import Iterable

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector

from api.http.request_logging import TimedResponse

# Seconds; from a cached key check (~1 ms) to a geo result computed within its request (2 s, then a job).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
UNMATCHED_ROUTE = "unmatched"  # a path no route has (404): never the raw path, which anyone can vary
_PATH_PARAMETER = re.compile(r"\\\{[^/]*?\\\}")  # ``{job_id}`` or ``{job_id:uuid}``, once re.escape'd


class RouteTemplates:
    """Finds the template of a path whose route exists but whose method does not (a 405).

    The router sets ``path_template`` only when path and method both match, so a ``DELETE`` on
    ``/v1/power/holdout`` would otherwise be counted as ``unmatched`` though its route is known. Templates
    with fewer parameters are tried first, so ``…/assignments/summary`` wins over ``…/assignments/{unit}``.
    """

    def __init__(self, templates: Iterable[str]) -> None:
        ordered = sorted(set(templates), key=lambda template: (template.count("{"), template))
        self._patterns = [
            (re.compile("^" + _PATH_PARAMETER.sub("[^/]+", re.escape(template)) + "/?$"), template)
            for template in ordered
        ]

    def of(self, path: str) -> str | None:
        return next((template for pattern, template in self._patterns if pattern.match(path)), None)


class RequestMetrics:
    """The app's Prometheus registry: HTTP requests and this process's CPU and memory."""

    def __init__(self, job_kinds: tuple[str, ...]) -> None:
        self.job_kinds = job_kinds
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        labels = ("method", "route", "status")
        self.requests = Counter(
            "counterfact_http_requests",
            "HTTP requests answered, by method, route template and status.",
            labels,
            registry=self.registry,
        )
        self.latency = Histogram(
            "counterfact_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by method, route template and status.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route, str(status)).observe(seconds)


def measure_requests(metrics: RequestMetrics, app: ASGIApp, routes: RouteTemplates | None = None) -> ASGIApp:
    """``app`` counting and timing each HTTP request under its route template (``/v1/jobs/{job_id}``); a 405
    is counted under the template of its path when ``routes`` knows it."""

    async def measured(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        response = TimedResponse(send)
        try:
            await app(scope, receive, response.send)
        finally:
            template: str | None = scope.get("path_template")  # set by the router once path and method matched
            if not template and response.status == 405 and routes is not None:
                template = routes.of(scope["path"])
            metrics.observe(scope["method"], template or UNMATCHED_ROUTE, response.status, response.seconds())

    return measured
