"""Validate and store holdout observations, transactionally."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from api.audit import service as audit
from api.experiments.repository import ExperimentRepository
from api.experiments.revisions import bump_data_revision
from api.experiments.service import lock_for_results_data
from api.http.errors import invalid_field
from api.observations.repository import ObservationRepository
from api.observations.schemas import ArmObservation, ObservationsAccepted, ObservationsUpload
from stats.arm_statistics import ArmSummary

ARM_CODES = {"treatment": 0, "holdout": 1}


def arm_summary(item: ArmObservation, metric_kind: str, field: str) -> ArmSummary:
    """The arm's sufficient statistics, validated by the numerical core (it names the field at fault)."""
    covariates: dict[str, Any] = {
        "covariate_sum": item.covariate_sum,
        "covariate_sum_squares": item.covariate_sum_squares,
        "cross_sum": item.cross_sum,
    }
    if metric_kind == "proportion":
        if item.conversions is None:
            raise invalid_field(f"{field}.conversions", "required for a proportion metric")
        if item.sum is not None or item.sum_squares is not None:
            raise invalid_field(f"{field}.sum", "a proportion metric takes `conversions`, not sums")
        return ArmSummary.from_proportion(item.units, item.conversions, field_path=field, **covariates)
    if item.conversions is not None:
        raise invalid_field(f"{field}.conversions", "a mean metric takes `sum` and `sum_squares`")
    if item.sum is None or item.sum_squares is None:
        missing = "sum" if item.sum is None else "sum_squares"
        raise invalid_field(f"{field}.{missing}", "required for a mean metric")
    if item.value_per_conversion is not None:
        raise invalid_field(f"{field}.value_per_conversion", "only for proportion metrics; a mean is already value")
    return ArmSummary.from_mean(item.units, item.sum, item.sum_squares, field_path=field, **covariates)


async def store_observations(
    pool: asyncpg.Pool, experiment_id: UUID, upload: ObservationsUpload
) -> ObservationsAccepted:
    """Replace the totals of each channel/arm sent; all or nothing."""
    async with pool.acquire() as connection, connection.transaction():
        experiment = await lock_for_results_data(connection, experiment_id, "observations")
        experiments = ExperimentRepository(connection)
        metric_kind = experiment["design"]["metric"]["kind"]
        positions = {r["name"]: r["position"] for r in await experiments.channels(experiment_id)}
        seen: set[tuple[str, str]] = set()
        rows = []
        for index, item in enumerate(upload.observations):
            field = f"observations[{index}]"
            if item.channel not in positions:
                raise invalid_field(f"{field}.channel", f"not a channel of this experiment ({', '.join(positions)})")
            if (item.channel, item.arm) in seen:
                raise invalid_field(field, f"{item.channel}/{item.arm} is sent twice")
            seen.add((item.channel, item.arm))
            if item.arm == "holdout" and (item.spend is not None or item.value_per_conversion is not None):
                raise invalid_field(f"{field}.spend", "spend and value per conversion go on the treatment arm")
            arm_summary(item, metric_kind, field)
            rows.append((positions[item.channel], ARM_CODES[item.arm], item))
        columns = list(
            zip(
                *[
                    (
                        p,
                        a,
                        i.units,
                        i.conversions,
                        i.sum,
                        i.sum_squares,
                        i.covariate_sum,
                        i.covariate_sum_squares,
                        i.cross_sum,
                        i.spend,
                        i.value_per_conversion,
                    )
                    for p, a, i in rows
                ],
                strict=True,
            )
        )
        replaced = await ObservationRepository(connection).replace(experiment_id, columns)
        await bump_data_revision(connection, experiment_id)
        await audit.record(
            connection,
            experiment_id,
            "observations_stored",
            {
                "arms": [{"channel": i.channel, "arm": i.arm, "units": i.units} for _, _, i in rows],
                "replaced": replaced,
            },
        )
        return ObservationsAccepted(experiment_id=str(experiment_id), stored=len(rows), replaced=replaced)
