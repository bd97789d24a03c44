"""HTTP endpoints of geo-lift test design: `POST /v1/geo/power` and `POST /v1/geo/market-selection`."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import asyncpg
from litestar import Controller, Response, post
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import Body, FromPath
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_202_ACCEPTED

from api.charts.images import AcceptedChartOperation, ChartFormatParameter, chart_image
from api.experiments.controller import CreateIdempotencyKey, created_response, replayed_create
from api.experiments.schemas import GeoExperiment
from api.geo_design.schemas import ExperimentFromDesign, GeoPowerRequest, GeoPowerResult, MarketSelectionRequest
from api.geo_design.service import answer_geo_power, create_experiment_from_design, submit_market_selection
from api.http.errors import problem_responses
from api.jobs.answer import KEPT_ANSWER_HEADERS, PreferHeader, answer_response, job_response, job_spec, wait_budget
from api.jobs.schemas import Job
from api.openapi.examples import ExampleOperation, KeptJobOperation
from api.settings import Settings

POWER_EXAMPLES = [
    Example(
        summary="GeoLift's walkthrough: chicago and portland, 10 or 15 days, lifts up to 20%",
        value={
            "dataset_id": "0d6c8f7e-3a55-4c1e-9a51-2f0a4f6a9b10",
            "treatment_markets": ["chicago", "portland"],
            "durations": [10, 15],
            "effect_sizes": [0, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2, 0.225, 0.25],
            "alpha": 0.1,
            "cost_per_kpi": 7.5,
        },
    )
]

FROM_DESIGN_EXAMPLES = [
    Example(
        summary="The best candidate, tested right after the history",
        value={"rank": 1, "name": "TV in the best markets", "channel": "tv", "spend": 30000},
    )
]

SELECTION_EXAMPLES = [
    Example(
        summary="GeoLift's walkthrough: 2 to 5 markets with chicago, never honolulu, 10 or 15 days",
        value={
            "dataset_id": "0d6c8f7e-3a55-4c1e-9a51-2f0a4f6a9b10",
            "treatment_sizes": [2, 3, 4, 5],
            "durations": [10, 15],
            "effect_sizes": [0, 0.05, 0.1, 0.15, 0.2],
            "include": ["chicago"],
            "exclude": ["honolulu"],
            "cost_per_kpi": 7.5,
            "budget": 100000,
            "alpha": 0.1,
        },
    ),
    Example(
        summary="GeoLift's multi-cell walkthrough: two cells of 2 or 3 markets, 15 days",
        value={
            "dataset_id": "0d6c8f7e-3a55-4c1e-9a51-2f0a4f6a9b10",
            "cells": 2,
            "treatment_sizes": [2, 3],
            "durations": [15],
            "effect_sizes": [0, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2, 0.225, 0.25],
            "alpha": 0.1,
        },
    ),
]


ANSWERED_JOB = job_spec(
    "An identical request already answered on this dataset version: its finished job (`Location`), with its age "
    "(`Age`, `Last-Modified`)."
)
"""The ``200`` of a design that is always a job: the job that succeeded on an identical request."""

SELECTION_DESCRIPTION = """\
Always a job (`202` + `Location: /v1/jobs/{id}`): GeoLift's `GeoLiftMarketSelection` with the power of
`POST /v1/geo/power`. Candidates: for each treatment size, GeoLift's sets (each market with its most correlated
partners, always holding `include`, never `exclude`) plus those a swap search finds beyond them (`source`). Every
candidate is simulated for every duration and effect size, in chunks that all running `counterfact worker`
processes share. The job's `result` lists the best `top` designs (markets, duration, MDE, exact MDE, power at the
MDE, investment, treatment and holdout share of KPI, power curve, pre-period fit, warnings), `ranking` says how they
were ordered, and `dropped` how many designs each constraint removed (no MDE in the grid, over `budget`, outside
`holdout`) and what to relax. A request the panel cannot answer is refused at once (400 naming the field); a
selection where nothing qualifies succeeds with an empty list and its reasons. `POST
/v1/geo/market-selection/{job_id}/experiments` turns a candidate into an experiment.

One computation per question: an identical request (the same parameters, markets spelt as the dataset does, on
the same dataset version) made while one is queued or running gets the same job; once that job has succeeded, an
identical request answers `200` with it (`Location`, `Age` in seconds since it finished, `Last-Modified`) for as
long as jobs are kept (30 days), until the dataset gets a new version or is deleted.

`cells: k` selects a multi-cell test, as GeoLift's `MultiCellMarketSelection`: the markets are dealt into `k`
partitions by total KPI and each cell is selected within its own partition (controls too), so no market is in two
cells and no cell's controls are treated by another; `result.cells` lists each cell's partition and ranked
candidates, and rank r becomes a multi-cell experiment of every cell's candidate r."""

POWER_DESCRIPTION = """\
GeoLift's `GeoLiftPower`, with the test experiment results run: for each duration, the last `lookback_windows`
windows of that length in the history are simulated: the panel is cut at the window's end, each effect size is
injected into the treated markets on the window's days (KPI x (1 + effect)), the estimator is re-fitted and the
conformal test of no average effect is run, exactly as `GET /v1/experiments/{id}/results` runs it.

`power` is a probability, not a 0/1 verdict of one window: the probability that the test rejects when the
window's noise is drawn afresh, every placement of the history's own residual path being one draw (the
assumption the permutation test itself rests on), averaged over the uncertainty of that noise's scale (a
short history shows it only roughly: the predictive power). At effect 0 it is at most `alpha`. `detected` is the plain
verdict on the actual history (GeoLift's "power"). `mde` is the smallest effect of the grid reaching
`power_target`, `mde_exact` the effect between grid points where the power reaches it, `investment` =
`cost_per_kpi` x treated KPI over the window x MDE. `warnings` apply GeoLift's guidance (history at least 4x the
test and 25 days, at least 20 markets, treated share of KPI).

One computation per question: identical requests (the same parameters, markets spelt as the dataset does, on
the same dataset version) made while one is computing wait for it, or get its job; a finished answer is kept
until the dataset gets a new version or is deleted, and an identical request is then answered from it at once,
even with `respond-async`, stating its age in `Age` (seconds) and when it was computed in `Last-Modified`.

`?format=svg` or `png` answers the power curves as an image (a job's, from `GET /v1/jobs/{id}` with the same
parameter)."""


class GeoDesignController(Controller):
    path = "/v1/geo"
    tags = ["geo design"]

    @post(
        "/power",
        operation_id="GetGeoPower",
        opt={"scope": "read"},  # computes only: a read key may call it
        operation_class=AcceptedChartOperation,
        summary="Power, MDE and investment of a geo-lift test on given markets",
        description=POWER_DESCRIPTION,
        status_code=HTTP_200_OK,
        response_headers=KEPT_ANSWER_HEADERS,
        responses={
            HTTP_202_ACCEPTED: job_spec(
                "Still computing (a long history): the job to poll (also in the `Location` header)."
            ),
            **problem_responses(400, 404, 409, 413, 415, 503),
        },
    )
    async def geo_power(
        self,
        pool: NamedDependency[asyncpg.Pool],
        queue_pool: NamedDependency[asyncpg.Pool],
        settings: NamedDependency[Settings],
        data: Annotated[GeoPowerRequest, Body(examples=POWER_EXAMPLES)],
        prefer: PreferHeader = None,
        format: ChartFormatParameter = "json",
    ) -> Response[GeoPowerResult]:
        answer = await answer_geo_power(pool, queue_pool, data, wait_budget(prefer, settings.job_after_seconds))
        if answer.value is not None and format != "json":
            return await chart_image(answer.value.chart, format)
        return answer_response(answer)

    @post(
        "/market-selection",
        operation_id="CreateMarketSelection",
        operation_class=KeptJobOperation,
        summary="Rank candidate treatment markets, test lengths and effect sizes (a job)",
        description=SELECTION_DESCRIPTION,
        status_code=HTTP_202_ACCEPTED,
        responses={HTTP_200_OK: ANSWERED_JOB, **problem_responses(400, 404, 409, 413, 415, 503)},
    )
    async def market_selection(
        self,
        pool: NamedDependency[asyncpg.Pool],
        queue_pool: NamedDependency[asyncpg.Pool],
        data: Annotated[MarketSelectionRequest, Body(examples=SELECTION_EXAMPLES)],
    ) -> Response[Job]:
        return job_response(await submit_market_selection(pool, queue_pool, data))

    @post(
        "/market-selection/{job_id:uuid}/experiments",
        operation_id="CreateExperimentFromDesign",
        operation_class=ExampleOperation,
        summary="Create a geo experiment from a market selection's candidate",
        description="Makes candidate `rank` of a finished market selection a `draft` geo experiment in one call: "
        "its markets, the selection's dataset, its history as the pre-period and, unless given, a test period of "
        "the candidate's duration right after the history. The experiment keeps `design_source` (job and rank). "
        "`Idempotency-Key` works as for `CreateExperiment`. 404 when no finished selection has this id; 409 when "
        "the test would share markets and dates with a running experiment on the same dataset.",
        status_code=HTTP_201_CREATED,
        responses={
            HTTP_200_OK: replayed_create(GeoExperiment),
            **problem_responses(400, 404, 409, 413, 415, 503),
        },
    )
    async def experiment_from_design(
        self,
        pool: NamedDependency[asyncpg.Pool],
        job_id: FromPath[UUID],
        data: Annotated[
            ExperimentFromDesign,
            Body(examples=FROM_DESIGN_EXAMPLES, description="The candidate to test, a name and a channel."),
        ],
        idempotency_key: CreateIdempotencyKey = None,
    ) -> Response[GeoExperiment]:
        experiment, created = await create_experiment_from_design(pool, job_id, data, idempotency_key)
        assert isinstance(experiment, GeoExperiment)
        return created_response(experiment, created)
