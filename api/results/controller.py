"""``GET /v1/experiments/{id}/results``: what each channel really added, and how sure we are."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import asyncpg
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from api.errors import problem_responses
from api.experiments.service import fetch_experiment_row
from api.results.holdout import holdout_results
from api.results.schemas import HoldoutResults


class ResultsController(Controller):
    path = "/v1/experiments/{experiment_id:uuid}/results"
    tags = ["results"]

    @get(
        operation_id="GetExperimentResults",
        summary="Lift per channel with confidence intervals, p-values, iROAS and a decision",
        description="Holdout experiments: per channel both arms, absolute and relative lift with CIs (unpooled "
        "normal test; delta method on the log ratio, Fieller's interval beside it), p-values with Holm's adjustment "
        "across channels, incremental outcome, iROAS and cost per incremental conversion when spend is known, "
        "CUPED when covariates were sent, sample-ratio mismatch, the MDE the data could detect and a decision "
        "(`scale`, `iterate`, `stop`, `investigate`). `sequential=true` gives always-valid p-values and confidence "
        "sequences (mixture SPRT) so the results may be read every day. 409 when observations are missing.",
        responses=problem_responses(400, 404, 409),
    )
    async def results(
        self,
        pool: NamedDependency[asyncpg.Pool],
        experiment_id: FromPath[UUID],
        confidence_level: Annotated[
            float, QueryParameter(gt=0.5, lt=1.0, description="Confidence level of every interval.")
        ] = 0.95,
        sequential: Annotated[
            bool, QueryParameter(description="Always-valid inference, safe to look at every day (holdout).")
        ] = False,
        minimum_lift: Annotated[
            float | None,
            QueryParameter(
                gt=0.0, description="Smallest relative lift worth having; lets `stop` call a test conclusive."
            ),
        ] = None,
    ) -> HoldoutResults:
        async with pool.acquire() as connection:
            experiment = await fetch_experiment_row(connection, experiment_id)
            return await holdout_results(
                connection,
                experiment,
                confidence_level=confidence_level,
                sequential=sequential,
                minimum_lift=minimum_lift,
            )
