"""``GET /v1/experiments/{id}/calibration``: lift results as the calibration input of an open MMM."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

import asyncpg
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.status_codes import HTTP_202_ACCEPTED

from api.calibration import formats
from api.calibration.schemas import (
    CalibrationExport,
    CalibrationFormat,
    KpiType,
    MeridianCalibration,
    PymcMarketingCalibration,
)
from api.calibration.service import CalibrationQuery, calibration_answer
from api.geo.controller import DatasetVersionParameter
from api.geo.schemas import GeoMethod
from api.http.errors import invalid_field, problem_responses
from api.http.request_bodies import CSV_MEDIA_TYPE
from api.jobs.answer import PreferHeader, answer_response, job_spec, wait_budget
from api.openapi.examples import AcceptedCsvOperation
from api.settings import Settings

DESCRIPTION = (
    "The experiment's lift per channel (from the same computation as `GET …/results`) as the calibration input "
    "of an open marketing-mix model, with the libraries' own field names:\n\n"
    "- `format=robyn`: Robyn's `calibration_input` rows `channel, liftStartDate, liftEndDate, liftAbs, spend, "
    "confidence, metric, calibration_scope`: `liftAbs` the total incremental KPI over the test on the treated "
    "group, `spend` that group's spend, `confidence` = 1 − p-value, `metric` = `kpi_name` (the model's "
    "`dep_var`), `calibration_scope` = `immediate`. As JSON, or as `text/csv` (`Accept: text/csv` or "
    "`media=csv`) ready for `read.csv`.\n"
    "- `format=meridian`: per channel the keyword arguments of Meridian's "
    "`CalibrationBuilder.with_incrementality_experiment_result` (`point_estimates`: ROI for a revenue KPI, "
    "incremental KPI per unit of spend otherwise; `standard_errors`, `experiment_kpi_types`, "
    "`experiment_total_spends`, `experiment_start_dates`, `experiment_end_dates`). 422 for what Meridian "
    "refuses: a standard error ≤ 0, a significantly negative ROI (95% upper bound < 0), a one-day test.\n"
    "- `format=pymc-marketing`: PyMC-Marketing's `df_lift_test` rows `channel, x, delta_x, delta_y, sigma` "
    "(plus `geo` for a geo test: one row per treated market, each an equal share) for "
    "`add_lift_test_measurements`, per MMM period of `period_days` days. 422 when `delta_x · delta_y < 0`. "
    "Also as `text/csv`.\n\n"
    "Every export says in `context.roi_kind` whether the test measured the channel's average ROI (holdout, "
    "holdback, go-dark) or its marginal ROI (heavy-up). Standard errors come from the result's interval by the "
    "normal approximation. Holdout tests span their `test_dates`: the days they actually ran (`actual_period`: "
    "from `running` to `stopped`, or stated for a test registered after it ran), up to today while running, else "
    "their planned `test_period` (each with a warning); geo tests span their `test_period` and spend their `spend` "
    "(`method=trimmed_match`: the pairs' incremental cost, which its iROAS is per). `context.test_dates` states "
    "those dates in every format. 409 when the results cannot be computed yet, a channel has no spend or the test "
    "has no dates; 404 unknown experiment."
    "\n\nA computation that takes longer than about 2 s answers `202 Accepted` with a job (`Location: "
    "/v1/jobs/{id}`) whose `result` is the export as JSON; `Prefer: respond-async` asks for the job at once."
)


def _wants_csv(request: Request[Any, Any, Any], media: Literal["json", "csv"] | None) -> bool:
    if media is not None:
        return media == "csv"
    return request.accept.best_match(["application/json", CSV_MEDIA_TYPE], "application/json") == CSV_MEDIA_TYPE


class CalibrationController(Controller):
    path = "/v1/experiments/{experiment_id:uuid}/calibration"
    tags = ["calibration"]

    @get(
        operation_id="GetCalibrationExport",
        summary="Lift results as Robyn, Meridian or PyMC-Marketing calibration input",
        description=DESCRIPTION,
        operation_class=AcceptedCsvOperation,
        responses={
            HTTP_202_ACCEPTED: job_spec(
                "Still computing: the job to poll (also in the `Location` header); its `result` is the export as JSON."
            ),
            **problem_responses(400, 404, 409, 422, 503),
        },
    )
    async def export(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[asyncpg.Pool],
        queue_pool: NamedDependency[asyncpg.Pool],
        settings: NamedDependency[Settings],
        experiment_id: FromPath[UUID],
        format: Annotated[CalibrationFormat, QueryParameter(description="The MMM whose input to produce.")],
        media: Annotated[
            Literal["json", "csv"] | None,
            QueryParameter(description="`csv` for Robyn and PyMC-Marketing rows as `text/csv` (or send Accept)."),
        ] = None,
        kpi_type: Annotated[
            KpiType | None,
            QueryParameter(
                description="Whether the MMM's KPI is revenue. Default: `revenue` when the incremental outcome is "
                "money (mean metric, conversions with `value_per_conversion`, geo KPI), else `non-revenue`."
            ),
        ] = None,
        kpi_name: Annotated[
            str | None,
            QueryParameter(
                min_length=1,
                max_length=200,
                description="Robyn: the model's `dep_var`, written as `metric` (default `revenue` or `conversions`).",
            ),
        ] = None,
        method: Annotated[
            GeoMethod | None, QueryParameter(description="Geo experiments: the estimator (default synthetic_control).")
        ] = None,
        confidence_level: Annotated[
            float | None,
            QueryParameter(
                gt=0.5, lt=1.0, description="Level of the result intervals (default 0.95 holdout, 0.9 geo)."
            ),
        ] = None,
        period_days: Annotated[
            int, QueryParameter(ge=1, le=366, description="PyMC-Marketing: days in one period of the MMM (7 weekly).")
        ] = 7,
        dataset_version: DatasetVersionParameter = None,
        prefer: PreferHeader = None,
    ) -> Response[CalibrationExport]:
        csv = _wants_csv(request, media)
        if csv and format == "meridian":
            raise invalid_field(
                "media",
                "Meridian's input is keyword arguments per channel: JSON only "
                "(text/csv was asked by `media` or `Accept`)",
            )
        query = CalibrationQuery(
            experiment_id=experiment_id,
            format=format,
            kpi_type=kpi_type,
            kpi_name=kpi_name,
            method=method,
            confidence_level=confidence_level,
            period_days=period_days,
            dataset_version=dataset_version,
        )
        answer = await calibration_answer(pool, queue_pool, query, wait_budget(prefer, settings.job_after_seconds))
        export = answer.value
        if export is None or not csv:
            return answer_response(answer)
        assert not isinstance(export, MeridianCalibration)
        rows = export.df_lift_test if isinstance(export, PymcMarketingCalibration) else export.calibration_input
        return Response(
            formats.as_csv(rows),  # type: ignore[arg-type]
            media_type=CSV_MEDIA_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{format}-calibration-{experiment_id}.csv"'},
        )
