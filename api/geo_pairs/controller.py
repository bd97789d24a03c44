"""HTTP endpoints of matched-pair geo designs: `POST /v1/geo/matched-pairs` and its experiments."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import asyncpg
from litestar import Controller, Response, post
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import Body, FromPath
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_202_ACCEPTED

from api.experiments.controller import CreateIdempotencyKey, created_response, replayed_create
from api.experiments.schemas import GeoExperiment
from api.geo_design.controller import ANSWERED_JOB
from api.geo_pairs.schemas import ExperimentFromPairDesign, MatchedPairsRequest
from api.geo_pairs.service import create_experiment_from_pair_design, submit_matched_pairs
from api.http.errors import problem_responses
from api.jobs.answer import job_response
from api.jobs.schemas import Job
from api.openapi.examples import ExampleOperation, KeptJobOperation

DESIGN_EXAMPLES = [
    Example(
        summary="trimmed_match's design colab on its example data: a 4-week holdback, budgets of 125k and 300k",
        value={
            "dataset_id": "0d6c8f7e-3a55-4c1e-9a51-2f0a4f6a9b10",
            "budgets": [125000, 300000],
            "target_iroas": 3.0,
            "evaluation_period": {"start": "2020-12-02", "end": "2020-12-29"},
            "test_type": "holdback",
            "exclude": ["2", "14"],
            "seed": 2020,
        },
    )
]

FROM_DESIGN_EXAMPLES = [
    Example(
        summary="The design keeping 60 pairs, tested right after the history",
        value={"pairs_kept": 60, "name": "Search holdback", "channel": "search", "spend": 300000},
    )
]

DESIGN_DESCRIPTION = """\
Always a job (`202` + `Location: /v1/jobs/{id}`): Google trimmed_match's randomized matched-pair design
(`TrimmedMatchGeoXDesign`). The geos (less `exclude`; the one with the largest response left out when their number is
odd) are paired by the similarity of their response and spend over the pre-period outside `evaluation_period`
(weights `matching_weights`), or `pairs` are taken as given; pairs are numbered least similar first. For each number
of pairs kept (`pair_counts`, default every number from 10 to all) the least similar pairs are dropped, and the
design is replayed `simulations` times on `evaluation_period` (as long as the planned test) with a random coin flip
in every pair and no true effect: the job's `result` lists per design and budget the RMSE of the trimmed match iROAS
estimate, the minimum detectable iROAS `RMSE x (z(1 - alpha) + z(power_target))`, the lift it means, and the budget
that reaches `target_iroas`; with only a target, each design is evaluated at the budget it needs. Each design's
within-pair randomization is the first draw from `seed` (stored; generated when absent) passing a sign test and an A/A
test. `recommended` is the design with the smallest RMSE per share of spend (the design colab's choice). Cost:
78 designs x 200 simulations of 174 geos take seconds for holdback and go-dark; heavy-up simulations whose spend
deltas take both signs are solved by a slower sweep (about 1.5 s per design of 87 pairs and budget). Bad input
is refused at once: 400 naming the field (unknown or excluded geo, a pair of a geo with itself, a geo in two pairs,
too short a history, more pairs than the design has), 409 for geos with missing dates. `POST
/v1/geo/matched-pairs/{job_id}/experiments` turns a design into a paired experiment.

One computation per question: an identical request (the same parameters on the same dataset version; requests
without `seed` are identical whatever seed the first was given) made while one is queued or running gets the same
job; once that job has succeeded, an identical request answers `200` with it (`Location`, `Age` in seconds since it
finished, `Last-Modified`) for as long as jobs are kept (30 days), until the dataset gets a new version or is
deleted. Send another `seed` for another randomization."""


class MatchedPairsController(Controller):
    path = "/v1/geo/matched-pairs"
    tags = ["geo design"]

    @post(
        "",
        operation_id="CreateMatchedPairDesign",
        operation_class=KeptJobOperation,
        summary="Design a randomized matched-pair geo test (a job)",
        description=DESIGN_DESCRIPTION,
        status_code=HTTP_202_ACCEPTED,
        responses={HTTP_200_OK: ANSWERED_JOB, **problem_responses(400, 404, 409, 413, 415, 503)},
    )
    async def matched_pairs(
        self,
        pool: NamedDependency[asyncpg.Pool],
        queue_pool: NamedDependency[asyncpg.Pool],
        data: Annotated[MatchedPairsRequest, Body(examples=DESIGN_EXAMPLES)],
    ) -> Response[Job]:
        return job_response(await submit_matched_pairs(pool, queue_pool, data))

    @post(
        "/{job_id:uuid}/experiments",
        operation_id="CreateExperimentFromPairDesign",
        operation_class=ExampleOperation,
        summary="Create a paired geo experiment from a matched-pair design",
        description="Makes the design keeping `pairs_kept` pairs of a finished matched-pair design a `draft` geo "
        "experiment in one call: its `pairs` as randomized (`[treatment, control]`), their treatment geos as "
        "`treatment_markets`, the design's dataset, its pre-period and, unless given, a test period as long as the "
        "evaluation window right after the pre-period. The experiment keeps `design_source` (job, `pairs_kept`, "
        "seed), and its `method=trimmed_match` results choose their trim rate up to the 10% the design simulated "
        "its RMSE with (unless `trim_rate` fixes one; `fit.max_trim_rate` says the bound used). `Idempotency-Key` "
        "works as for `CreateExperiment`. 404 when no finished design has this id; 409 when the test would share "
        "geos and dates with a running experiment on the same dataset.",
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
            ExperimentFromPairDesign,
            Body(examples=FROM_DESIGN_EXAMPLES, description="The design to test, a name and a channel."),
        ],
        idempotency_key: CreateIdempotencyKey = None,
    ) -> Response[GeoExperiment]:
        experiment, created = await create_experiment_from_pair_design(pool, job_id, data, idempotency_key)
        assert isinstance(experiment, GeoExperiment)
        return created_response(experiment, created)
