"""HTTP endpoints of the experiments resource."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar
from uuid import UUID

import asyncpg
from litestar import Controller, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import Body, FromPath, FromQuery, HeaderParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from api.experiments import service
from api.experiments.schemas import (
    Experiment,
    ExperimentCreate,
    ExperimentKind,
    ExperimentPage,
    ExperimentPatch,
    ExperimentStatus,
    GeoExperiment,
    HoldoutExperiment,
)
from api.http.errors import problem_responses
from api.openapi.examples import ExampleOperation

IMPORTED_HOLDOUT_EXAMPLE = Example(
    summary="Holdout test registered after it ran: the days it ran stated, its observations sent next",
    value={
        "kind": "holdout",
        "name": "February meta holdout",
        "metric": {"kind": "proportion"},
        "channels": [{"name": "meta", "holdout_fraction": 0.1}],
        "test_period": {"start": "2026-02-02", "end": "2026-02-15"},
        "actual_period": {"start": "2026-02-02", "end": "2026-02-15"},
    },
)

CREATE_EXAMPLES = [
    Example(
        summary="Holdout test on two channels",
        value={
            "kind": "holdout",
            "name": "Q1 paid social and search",
            "metric": {"kind": "proportion", "baseline": 0.05},
            "alpha": 0.05,
            "channels": [{"name": "meta", "holdout_fraction": 0.1}, {"name": "search", "holdout_fraction": 0.05}],
        },
    ),
    Example(
        summary="Geo test",
        value={
            "kind": "geo",
            "name": "TV in Chicago and Portland",
            "dataset_id": "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f",
            "channel": "tv",
            "treatment_markets": ["chicago", "portland"],
            "pre_period": {"start": "2021-01-01", "end": "2021-03-31"},
            "test_period": {"start": "2021-04-01", "end": "2021-04-15"},
            "spend": 50000,
        },
    ),
    Example(
        summary="Multi-cell geo test: two channels in disjoint markets, the untreated markets as shared controls",
        value={
            "kind": "geo",
            "name": "Social vs search",
            "dataset_id": "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f",
            "channel": "media",
            "cells": [
                {"name": "social", "channel": "meta", "treatment_markets": ["chicago", "cincinnati"], "spend": 20000},
                {
                    "name": "search",
                    "channel": "search",
                    "treatment_markets": ["honolulu", "indianapolis"],
                    "spend": 10000,
                },
            ],
            "pre_period": {"start": "2021-01-01", "end": "2021-03-31"},
            "test_period": {"start": "2021-04-01", "end": "2021-04-15"},
        },
    ),
    Example(
        summary="Go-dark geo test with a cool-down, neighbours out of the controls",
        value={
            "kind": "geo",
            "name": "TV off in Chicago and Portland",
            "dataset_id": "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f",
            "channel": "tv",
            "treatment_markets": ["chicago", "portland"],
            "pre_period": {"start": "2021-01-01", "end": "2021-03-31"},
            "test_period": {"start": "2021-04-01", "end": "2021-04-08"},
            "cooldown_period": {"start": "2021-04-09", "end": "2021-04-15"},
            "test_type": "go-dark",
            "spend_change": {"chicago": -30000, "portland": -20000},
            "exclude_from_controls": ["milwaukee"],
        },
    ),
    IMPORTED_HOLDOUT_EXAMPLE,
]

CreateIdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        max_length=200,
        min_length=1,
        description="Makes a retried create return the experiment the first call created (200, with "
        "`Idempotent-Replayed: true`); the same key with another body is 422. Kept as long as the experiment.",
    ),
]


E = TypeVar("E", bound=HoldoutExperiment | GeoExperiment)


def replayed_create(experiment_type: Any) -> ResponseSpec:
    """The ``200`` a create answers when retried with an ``Idempotency-Key`` already used (:func:`created_response`)."""
    return ResponseSpec(
        data_container=experiment_type,
        generate_examples=False,
        description="A retry with an `Idempotency-Key` already used: the experiment created first.",
    )


def created_response(experiment: E, created: bool) -> Response[E]:
    """``201`` with its ``Location`` for a new experiment; ``200`` for the one a retried create returns,
    marked ``Idempotent-Replayed: true`` like every replay (``api.idempotency``)."""
    location = {"Location": f"/v1/experiments/{experiment.id}"}
    if created:
        return Response(experiment, status_code=HTTP_201_CREATED, headers=location)
    return Response(experiment, status_code=HTTP_200_OK, headers={**location, "Idempotent-Replayed": "true"})


PATCH_EXAMPLES = [
    Example(summary="Start the test", value={"status": "running"}),
    Example(
        summary="Change the holdout while a draft",
        value={"channels": [{"name": "meta", "holdout_fraction": 0.2}]},
    ),
    Example(
        summary="State the days a holdout test actually ran (any status)",
        value={"actual_period": {"start": "2026-02-02", "end": "2026-02-15"}},
    ),
]


class ExperimentController(Controller):
    path = "/v1/experiments"
    tags = ["experiments"]

    @post(
        operation_id="CreateExperiment",
        operation_class=ExampleOperation,
        summary="Create an experiment",
        description="Creates a `draft` holdout or geo experiment. Send an `Idempotency-Key` header to make "
        "retries safe: a repeat with the same key and body returns the experiment created first (200, with "
        "`Idempotent-Replayed: true`), the same key with another body is refused (422). A holdout experiment's "
        "`salt` is generated when absent and never changes. A geo experiment that would share a market (treated, "
        "or in a matched pair) and test dates with a `running` one on the same dataset is refused (409 naming it).",
        status_code=HTTP_201_CREATED,
        responses={
            HTTP_200_OK: replayed_create(Experiment),  # a union of Structs: Litestar documents it as oneOf
            **problem_responses(400, 409, 413, 415, 503),
        },
    )
    async def create(
        self,
        pool: NamedDependency[asyncpg.Pool],
        data: Annotated[ExperimentCreate, Body(examples=CREATE_EXAMPLES, description="The experiment's design.")],
        idempotency_key: CreateIdempotencyKey = None,
    ) -> Response[Experiment]:
        return created_response(*await service.create_experiment(pool, data, idempotency_key))

    @get(
        operation_id="ListExperiments",
        operation_class=ExampleOperation,
        summary="List experiments",
        description="Newest first, `limit` per page; pass `next_cursor` back as `cursor` for the next page.",
        responses=problem_responses(400, 503),
    )
    async def list(
        self,
        pool: NamedDependency[asyncpg.Pool],
        kind: FromQuery[ExperimentKind | None] = None,
        status: FromQuery[ExperimentStatus | None] = None,
        cursor: Annotated[
            str | None, QueryParameter(max_length=200, description="`next_cursor` from the previous page.")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200, description="Page size.")] = 50,
    ) -> ExperimentPage:
        return await service.list_experiments(pool, kind=kind, status=status, cursor=cursor, limit=limit)

    @get(
        "/{experiment_id:uuid}",
        operation_id="GetExperiment",
        operation_class=ExampleOperation,
        summary="Get an experiment",
        description="The experiment as stored: its design (metric and channels, or dataset, markets and periods), "
        "status and the times it was created, started and stopped.",
        responses=problem_responses(400, 404, 503),
    )
    async def get(self, pool: NamedDependency[asyncpg.Pool], experiment_id: FromPath[UUID]) -> Experiment:
        return await service.get_experiment(pool, experiment_id)

    @patch(
        "/{experiment_id:uuid}",
        operation_id="UpdateExperiment",
        operation_class=ExampleOperation,
        summary="Change an experiment's status or design",
        description="`status` moves `draft → running → stopped` (anything else is 409); a holdout test's "
        "`actual_period` takes its start from `running` and its end from `stopped`, unless stated (any status). "
        "Design fields (metric, channels, alpha, test_period; channel, markets, periods, spend) change only "
        "while `draft`. A geo "
        "experiment cannot start (or change) into the markets and test dates of another running one (409).",
        responses=problem_responses(400, 404, 409, 415, 503),
    )
    async def update(
        self,
        pool: NamedDependency[asyncpg.Pool],
        experiment_id: FromPath[UUID],
        data: Annotated[ExperimentPatch, Body(examples=PATCH_EXAMPLES)],
    ) -> Experiment:
        return await service.patch_experiment(pool, experiment_id, data)
