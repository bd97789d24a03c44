"""HTTP endpoints for holdout-test power, sample size and MDE."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, post
from litestar.openapi.spec import Example
from litestar.params import Body
from litestar.status_codes import HTTP_200_OK

from api.charts.images import ChartFormatParameter, ChartOperation, chart_image
from api.http.errors import problem_responses
from api.openapi.examples import ExampleOperation
from api.power.schemas import (
    HoldoutPowerCurveRequest,
    HoldoutPowerCurveResponse,
    HoldoutPowerRequest,
    HoldoutPowerResponse,
)
from api.power.service import holdout_power_curve, solve_holdout_power

POWER_EXAMPLES = [
    Example(
        summary="Users to hold out to see a 10% lift on a 5% conversion rate",
        value={
            "metric": {"kind": "proportion", "baseline": 0.05},
            "solve_for": "sample_size",
            "mde": {"relative": 0.1},
            "power": 0.8,
            "alpha": 0.05,
            "holdout_fraction": 0.1,
            "daily_units": 20000,
        },
    ),
    Example(
        summary="Smallest revenue lift detectable with 200,000 users, two channels, CUPED",
        value={
            "metric": {"kind": "mean", "baseline": 12.3, "std_dev": 40},
            "solve_for": "mde",
            "sample_size": 200000,
            "holdout_fraction": 0.2,
            "comparisons": 2,
            "correction": "bonferroni",
            "variance_reduction": {"r_squared": 0.3},
        },
    ),
    Example(
        summary="Power of a 2% holdout",
        value={
            "metric": {"kind": "proportion", "baseline": 0.02},
            "solve_for": "power",
            "sample_size": 1000000,
            "holdout_fraction": 0.02,
            "mde": {"absolute": 0.002},
            "alternative": "larger",
        },
    ),
]

CURVE_EXAMPLES = [
    Example(
        summary="Power against sample size for a 5% lift",
        value={
            "metric": {"kind": "proportion", "baseline": 0.05},
            "mde": {"relative": 0.05},
            "holdout_fraction": 0.1,
            "curve": "power",
            "sample_size_range": {"min": 10000, "max": 2000000, "points": 40, "scale": "log"},
        },
    ),
]


class PowerController(Controller):
    path = "/v1/power"
    tags = ["power"]

    @post(
        "/holdout",
        operation_id="GetHoldoutPower",
        opt={"scope": "read"},  # computes only: a read key may call it
        operation_class=ExampleOperation,
        summary="Sample size, MDE or power of a holdout test",
        description="Solves for exactly one of `sample_size`, `mde` and `power` (`solve_for`) given the others. "
        "Proportions follow statsmodels' two-independent-proportions z-test (pooled variance under H0, "
        "unpooled under H1); means the two-sample t-test (noncentral t, as `TTestIndPower`). Sample sizes "
        "round up per arm. `comparisons` with Bonferroni splits `alpha` over channels tested at once; "
        "`variance_reduction.r_squared` applies CUPED. `warnings` flag answers that are valid but doubtful.",
        status_code=HTTP_200_OK,
        responses=problem_responses(400, 413, 415),
    )
    async def holdout_power(
        self, data: Annotated[HoldoutPowerRequest, Body(examples=POWER_EXAMPLES)]
    ) -> HoldoutPowerResponse:
        return solve_holdout_power(data)

    @post(
        "/holdout/curve",
        operation_id="GetHoldoutPowerCurve",
        opt={"scope": "read"},  # computes only: a read key may call it
        operation_class=ChartOperation,
        summary="Power (or MDE) against sample size, with a chart",
        description="The same design as `GetHoldoutPower`, evaluated on a grid of total sample sizes "
        "(`sample_sizes`, or `sample_size_range` linear or log, up to 500 points): `curve=power` draws power "
        "for the given MDE, `curve=mde` the MDE for the given power. `chart` is a Vega-Lite v5 spec; "
        "`?format=svg` or `png` answers it as an image.",
        status_code=HTTP_200_OK,
        responses=problem_responses(400, 413, 415),
    )
    async def holdout_power_curve(
        self,
        data: Annotated[HoldoutPowerCurveRequest, Body(examples=CURVE_EXAMPLES)],
        format: ChartFormatParameter = "json",
    ) -> Response[HoldoutPowerCurveResponse]:
        curve = holdout_power_curve(data)
        return Response(curve) if format == "json" else await chart_image(curve.chart, format)
