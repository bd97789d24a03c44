"""``GET /v1/experiments/{id}/results``: what each channel really added, and how sure we are."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import asyncpg
from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.status_codes import HTTP_202_ACCEPTED

from api.charts.images import AcceptedChartOperation, ChartFormatParameter, chart_image
from api.geo.controller import DatasetVersionParameter
from api.geo.schemas import GeoMethod, GeoMissingPolicy, GeoResults, MultiCellGeoResults
from api.http.errors import problem_responses
from api.jobs.answer import KEPT_ANSWER_HEADERS, PreferHeader, answer_response, job_spec, wait_budget
from api.results.schemas import HoldoutResults
from api.results.service import ResultsQuery, experiment_results
from api.settings import Settings
from stats.geo.tbr import TBRIntervalKind


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
        "sequences (mixture SPRT) so the results may be read every day. 409 when observations are missing. "
        "Geo experiments: `method` = `synthetic_control` (default; fixed effects, as GeoLift), "
        "`augmented_synthetic_control` (ridge ASCM) or `tbr` (time-based regression; `interval` = `conformal` or "
        "`kerman`): ATT, incremental KPI and "
        "relative lift with conformal CIs that never contradict the p-value, placebo p-value, iROAS, donor weights, "
        "the observed vs counterfactual series and a chart. Missing market-dates follow `missing` (see the "
        "parameter). Every geo result carries the pre-period residuals' lag-1 "
        "autocorrelation and a `backtest`: the method (and the others) on placebo windows of the test's length in the "
        "pre-period, with its empirical false-positive rate, placebo RMSE and power at the planned effect. "
        "409 when the panel does not cover the periods (naming the market-dates the test period still lacks). "
        "`dataset_version` recomputes the result on the dataset as it was at that version (`dataset_version` in the "
        "answer says which was read). "
        "`trimmed_match` (experiments with `pairs` only, else 400): Chen & Au's iROAS with its test-inversion CI "
        "and data-driven trim rate from each pair's treatment-minus-control KPI and spend over the test period, "
        "incremental KPI, the pairs trimmed and `fit.roi_kind` = `average`; 409 when the panel has no spend for "
        "the pairs or their spend deltas are all zero. "
        "Multi-cell geo experiments (`cells`) answer `kind` = `geo_cells`: each cell's own geo result with only the "
        "markets treated by no cell as controls, and every pair of cells compared on iROAS (relative lift when a "
        "cell has no spend) with an interval for the difference from a joint conformal test on both cells' "
        "residuals, which accounts for the controls they share."
        "\n\nA computation that takes longer than about 2 s (large panels, millions of unit-level outcomes) "
        "answers `202 Accepted` with a job (`Location: /v1/jobs/{id}`) to poll for progress and the result; "
        "`Prefer: respond-async` asks for the job at once, `Prefer: wait=N` waits longer."
        "\n\nOne computation per question: identical requests (same experiment, parameters and data) made while "
        "one is computing wait for it, or get its job; a finished answer is kept until the experiment's data "
        "(assignments, outcomes, observations, spend; a geo experiment's dataset) or settings change, and an "
        "identical request is then answered from it at once, even with `respond-async`, stating its age in "
        "`Age` (seconds) and when it was computed in `Last-Modified`. A kept sequential answer is not a new look."
        "\n\n`?format=svg` or `png` answers the result's chart (forest plot of the channels' lift; a geo "
        "result's observed vs counterfactual series) as an image; a job's chart is had from `GET /v1/jobs/{id}` "
        "with the same parameter.",
        operation_class=AcceptedChartOperation,
        response_headers=KEPT_ANSWER_HEADERS,
        responses={
            HTTP_202_ACCEPTED: job_spec("Still computing: the job to poll (also in the `Location` header)."),
            **problem_responses(400, 404, 409, 503),
        },
    )
    async def results(
        self,
        pool: NamedDependency[asyncpg.Pool],
        queue_pool: NamedDependency[asyncpg.Pool],
        settings: NamedDependency[Settings],
        experiment_id: FromPath[UUID],
        confidence_level: Annotated[
            float | None,
            QueryParameter(
                gt=0.5, lt=1.0, description="Confidence level of every interval (default 0.95 holdout, 0.9 geo)."
            ),
        ] = None,
        method: Annotated[
            GeoMethod | None, QueryParameter(description="Geo experiments: the estimator (default synthetic_control).")
        ] = None,
        missing: Annotated[
            GeoMissingPolicy | None,
            QueryParameter(
                description="Geo experiments: what a missing market-date becomes (default `drop_market`: a control "
                "market with gaps leaves the controls and a pre-period date on which a treated market has none "
                "leaves the fit, so no value is invented; `interpolate`: linear in time; `zero`: an absent row "
                "counts as 0, as summing each group's rows per date does in Google's matched_markets TBR). What "
                "was done is said in `warnings`. A treated market's gap in the test period or cool-down is refused "
                "(409 naming market and dates) unless `missing=zero`."
            ),
        ] = None,
        interval: Annotated[
            TBRIntervalKind | None,
            QueryParameter(
                description="Geo experiments, `method=tbr`: the interval and p-value. `conformal` (default): the "
                "block-permutation test on TBR's prediction errors (each window predicted from the fit without it, "
                "scaled by its control level and studentized by its sum's prediction variance; the interval "
                "contains the estimate), valid under serially correlated "
                "days and noise that grows with the level; `kerman`: Kerman, "
                "Wang & Vaver's exact predictive interval (as Google's matched_markets publishes it), valid only where "
                "the residuals show no autocorrelation (see `residual_autocorrelation`)."
            ),
        ] = None,
        sequential: Annotated[
            bool | None,
            QueryParameter(
                description="Inference safe to look at every day. Holdout: always-valid p-values and confidence "
                "sequences (mixture SPRT). Geo (synthetic_control, augmented_synthetic_control, tbr; a running or "
                "stopped experiment): `monitoring`, the method's conformal test on every test day so far held to "
                "O'Brien-Fleming-type alpha-spending boundaries of a look on every planned day, with its repeated "
                "p-value and interval and a decision; the default of an interim result (a running test whose "
                "period the data does not cover yet)."
            ),
        ] = None,
        minimum_lift: Annotated[
            float | None,
            QueryParameter(
                gt=0.0,
                description="Smallest relative lift worth having; lets `stop` call a test conclusive.",
                schema_extra={"exclusiveMinimum": 0.0},  # Litestar leaves a falsy bound out of the document
            ),
        ] = None,
        dataset_version: DatasetVersionParameter = None,
        prefer: PreferHeader = None,
        format: ChartFormatParameter = "json",
    ) -> Response[HoldoutResults | GeoResults | MultiCellGeoResults]:
        query = ResultsQuery(
            experiment_id=experiment_id,
            confidence_level=confidence_level,
            method=method,
            interval=interval,
            sequential=sequential,
            minimum_lift=minimum_lift,
            missing=missing,
            dataset_version=dataset_version,
        )
        answer = await experiment_results(pool, queue_pool, query, wait_budget(prefer, settings.job_after_seconds))
        if answer.value is not None and format != "json":
            return await chart_image(answer.value.chart, format)
        return answer_response(answer)
