"""The app factory: assembles controllers, the database lifespan, errors and the OpenAPI document."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import asyncpg
from litestar import Litestar, Request, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.openapi.spec import Contact, License, Server, Tag

from api.assignments.controller import AssignmentController
from api.audit.controller import AuditController, GeoDatasetAuditController
from api.auth.guard import ApiKeyGuard
from api.auth.keys import Scope
from api.auth.openapi import SECURITY, add_auth_problems, add_workspace_header, security_components
from api.auth.rate_limit import FailureLimiter, RateLimiter
from api.calibration.controller import CalibrationController
from api.db.database import apply_migrations, create_pool, load_migrations, resolve_database_url
from api.experiments.controller import ExperimentController
from api.geo.controller import GeoDatasetController
from api.geo_design.controller import GeoDesignController
from api.geo_pairs.controller import MatchedPairsController
from api.health.controller import HealthController
from api.http.allow_header import allow_every_method, methods_by_path
from api.http.content_types import require_declared_content_type
from api.http.dependencies import provide_pool, provide_queue_pool, provide_settings, provide_upload
from api.http.errors import exception_handlers
from api.http.head_requests import head_as_get
from api.http.json_depth import DepthCheckedRequest
from api.http.query_strings import refuse_ambiguous_query
from api.http.request_logging import configure_logging, request_logging_middleware
from api.http.unread_bodies import close_after_unread_body
from api.idempotency.middleware import idempotency_middleware
from api.idempotency.openapi import add_idempotency_docs
from api.jobs.controller import JobController
from api.jobs.openapi import JobResultSchema
from api.jobs.queue import forget_old_jobs, install_queue_schema
from api.lifecycle.controller import DeletionController
from api.metrics.controller import MetricsController
from api.metrics.requests import RequestMetrics, RouteTemplates, measure_requests
from api.observations.controller import ObservationController
from api.openapi.rendering import RenderedOpenAPIConfig, schema_router
from api.outcomes.controller import OutcomeController
from api.power.controller import PowerController
from api.results.controller import ResultsController
from api.settings import Settings, get_settings
from api.webapp import webapp_router
from api.worker_tasks import task_registry

API_VERSION = "1.0.0"
API_DESCRIPTION = """\
Counterfact answers two questions about marketing incrementality: *how big, how long and where must my
test be to see the lift I care about?* and *what did this channel really add, and how sure are we?*

Every error is an RFC 9457 `application/problem+json` document; validation errors list each offending
field in `invalid_params`. Every response carries an `X-Request-ID` header.
"""

logger = logging.getLogger("counterfact.app")

TAGS = [
    Tag(name="health", description="Liveness and database reachability."),
    Tag(name="power", description="How many units, how small a lift, how much power: holdout-test design."),
    Tag(name="experiments", description="Holdout and geo experiments and their life cycle."),
    Tag(name="geo", description="Geo panels (KPI per market and date) for geo experiments, with quality checks."),
    Tag(
        name="geo design",
        description="Which markets, how many, how long: geo-lift power by simulation and market selection.",
    ),
    Tag(name="assignments", description="Which arm each unit is in, per channel: hashed once, stored forever."),
    Tag(name="results", description="Observations in; lift, confidence intervals, iROAS and decisions out."),
    Tag(name="jobs", description="Computations that outlast their request: progress, then the result."),
]


def openapi_config() -> RenderedOpenAPIConfig:
    return RenderedOpenAPIConfig(
        title="Counterfact",
        version=API_VERSION,
        description=API_DESCRIPTION,
        contact=Contact(name="Counterfact engineering"),
        license=License(name="Proprietary"),
        servers=[Server(url="/", description="This server")],
        tags=TAGS,
        path="/schema",
        openapi_router=schema_router(),
        render_plugins=[ScalarRenderPlugin()],
        components=security_components(),
        operation_documenters=(add_auth_problems, add_workspace_header, add_idempotency_docs),
        use_handler_docstrings=False,
        create_examples=False,
    )


def rate_limiter(settings: Settings) -> RateLimiter:
    """Requests a minute per API key, by the key's scope (0: unlimited)."""
    return RateLimiter(
        {
            Scope.READ: settings.rate_limit_read_per_minute,
            Scope.WRITE: settings.rate_limit_write_per_minute,
            Scope.ADMIN: settings.rate_limit_admin_per_minute,
        }
    )


async def check_request(request: Request[Any, Any, Any]) -> None:
    """``before_request``: what routing and decoding would let through but the document refuses (400, 415)."""
    refuse_ambiguous_query(request)
    await require_declared_content_type(request)


def _database_lifespan(settings: Settings) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """The app's lifespan: open the pools, migrate and install the queue, forget old jobs; close the pools at exit."""

    @asynccontextmanager
    async def database_lifespan(app: Litestar) -> AsyncIterator[None]:
        database_url = resolve_database_url(settings)
        pool = await create_pool(database_url, settings)
        queue_pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
        assert queue_pool is not None
        try:
            async with queue_pool.acquire() as connection:
                await apply_migrations(connection, load_migrations())
                await install_queue_schema(connection)
            async with pool.acquire() as connection:
                await forget_old_jobs(connection)
            app.state.pool = pool
            app.state.queue_pool = queue_pool
            app.state.settings = settings
            yield
        finally:
            await queue_pool.close()
            await pool.close()

    return database_lifespan


def _v1_router(settings: Settings) -> Router:
    """The /v1 resources, each operation behind the API-key guard and the idempotency middleware."""
    # Every /v1 operation needs an API key; /health, /metrics, /schema and the /app pages stay open.
    guard = ApiKeyGuard(
        settings.api_key_cache_seconds,
        rate_limiter(settings),
        FailureLimiter(settings.auth_failures_per_minute),
        settings.api_key_negative_cache_seconds,
    )
    return Router(
        path="/",
        route_handlers=[
            PowerController,
            ExperimentController,
            AssignmentController,
            ObservationController,
            OutcomeController,
            ResultsController,
            CalibrationController,
            GeoDatasetController,
            GeoDesignController,
            MatchedPairsController,
            JobController,
            AuditController,
            GeoDatasetAuditController,
            DeletionController,
        ],
        guards=[guard],
        middleware=[idempotency_middleware(guard)],
        security=SECURITY,
    )


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the Litestar application; the database is opened in its lifespan."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)

    dependencies: dict[str, Any] = {
        "pool": Provide(provide_pool, sync_to_thread=False),
        "queue_pool": Provide(provide_queue_pool, sync_to_thread=False),
        "settings": Provide(provide_settings, sync_to_thread=False),
        "upload": Provide(provide_upload, sync_to_thread=False),
    }
    tasks = task_registry()
    request_metrics = RequestMetrics(job_kinds=tuple(sorted(tasks.jobs)))
    v1 = _v1_router(settings)
    app = Litestar(
        route_handlers=[HealthController, MetricsController, v1, webapp_router()],
        dependencies=dependencies,
        lifespan=[_database_lifespan(settings)],
        exception_handlers=exception_handlers(),
        before_request=check_request,
        state=State({"request_metrics": request_metrics}),
        openapi_config=openapi_config(),
        plugins=[JobResultSchema(tasks.answers)],
        request_max_body_size=settings.max_body_bytes,
        request_class=DepthCheckedRequest,
        debug=False,
    )
    # Around the router, not a route's middleware: requests no route matches (404, 405) are counted and
    # logged (with their X-Request-ID) too, and get the full Allow header; and every answer given before its
    # request's body was read, an error handler's included, closes the connection.
    allowed = methods_by_path(app)
    app.asgi_handler = close_after_unread_body(
        request_logging_middleware(
            measure_requests(
                request_metrics, head_as_get(allow_every_method(allowed, app.asgi_handler)), RouteTemplates(allowed)
            )
        )
    )
    return app
