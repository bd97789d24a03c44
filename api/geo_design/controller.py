"""HTTP endpoints of geo-lift test design: `POST /v1/geo/power` and `POST /v1/geo/market-selection`."""

from __future__ import annotations

import asyncio
from typing import Annotated

import asyncpg
from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import Body
from litestar.status_codes import HTTP_200_OK

from api.errors import problem_responses
from api.geo_design.panel import load_design_panel
from api.geo_design.schemas import GeoPowerRequest, GeoPowerResult
from api.geo_design.service import compute_geo_power
from api.openapi_examples import ExampleOperation

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

POWER_DESCRIPTION = """\
GeoLift's `GeoLiftPower`, with the test experiment results run: for each duration, the last `lookback_windows`
windows of that length in the history are simulated: the panel is cut at the window's end, each effect size is
injected into the treated markets on the window's days (KPI x (1 + effect)), the estimator is re-fitted and the
conformal test of no average effect is run, exactly as `GET /v1/experiments/{id}/results` runs it.

`power` is a probability, not a 0/1 verdict of one window: the probability that the test rejects when the
window's noise is drawn afresh, every placement of the history's own residual path being one draw (the
assumption the permutation test itself rests on). At effect 0 it is at most `alpha`. `detected` is the plain
verdict on the actual history (GeoLift's "power"). `mde` is the smallest effect of the grid reaching
`power_target`, `mde_exact` the effect between grid points where the power reaches it, `investment` =
`cost_per_kpi` x treated KPI over the window x MDE. `warnings` apply GeoLift's guidance (history at least 4x the
test and 25 days, at least 20 markets, treated share of KPI)."""


class GeoDesignController(Controller):
    path = "/v1/geo"
    tags = ["geo design"]

    @post(
        "/power",
        operation_id="GetGeoPower",
        opt={"scope": "read"},  # computes only: a read key may call it
        operation_class=ExampleOperation,
        summary="Power, MDE and investment of a geo-lift test on given markets",
        description=POWER_DESCRIPTION,
        status_code=HTTP_200_OK,
        responses=problem_responses(400, 404, 409, 413, 415, 503),
    )
    async def geo_power(
        self,
        pool: NamedDependency[asyncpg.Pool],
        data: Annotated[GeoPowerRequest, Body(examples=POWER_EXAMPLES)],
    ) -> GeoPowerResult:
        async with pool.acquire() as connection:
            panel = await load_design_panel(connection, data.dataset_id, data.history)
        return await asyncio.to_thread(compute_geo_power, data, panel)
