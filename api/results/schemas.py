"""Response bodies of holdout results (the geo results live in ``api.geo.schemas``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

from api.experiments.schemas import HoldoutTestDates
from api.fields.interval import Interval


class ArmFigures(Struct, frozen=True):
    """One arm: units, the mean (the conversion rate for proportions) and its standard error."""

    units: int
    mean: float
    std_error: float
    rate: float | None = None


class Lift(Struct, frozen=True):
    absolute: Interval
    relative: Interval
    relative_fieller: Interval | None = None
    relative_unavailable: Annotated[
        str | None,
        Meta(
            description="Why `relative` is null (a sequential result's always-valid interval is for the "
            "absolute lift only)."
        ),
    ] = None


class Cuped(Struct, frozen=True):
    """CUPED (Deng et al. 2013): θ from the pooled arms and the variance reduction it achieved."""

    theta: float
    variance_reduction: float | None
    covariate_balance_p_value: float | None


class DetectableEffect(Struct, frozen=True):
    """The lift this test could detect with `power`, given the standard error it observed."""

    absolute: float
    relative: float | None
    power: float


class Decision(Struct, frozen=True):
    action: Literal["scale", "iterate", "stop", "investigate"]
    reason: str


class ChannelResult(Struct, frozen=True):
    channel: str
    metric: Literal["proportion", "mean"]
    method: str
    treatment: ArmFigures
    holdout: ArmFigures
    lift: Lift
    p_value: float | None
    p_value_adjusted: Annotated[float | None, Meta(description="Holm (1979) across the experiment's channels.")]
    incremental: Annotated[Interval, Meta(description="Extra conversions (or value) in the treated arm.")]
    spend: Annotated[
        float | None, Meta(description="Spend on the treated arm during the test, as sent; what `iroas` divides by.")
    ]
    iroas: Interval | None
    cost_per_incremental: Interval | None
    srm_p_value: float | None
    cuped: Cuped | None
    mde: DetectableEffect | None
    decision: Decision
    warnings: list[str]


class OutcomeCoverage(Struct, frozen=True):
    """How the unit-level outcomes matched the assignments (counted over the experiment's first channel;
    every assigned unit has an arm in every channel)."""

    units_with_outcome: Annotated[int, Meta(description="Assigned units that have an outcome: the analysed units.")]
    unassigned_outcomes: Annotated[int, Meta(description="Outcomes of units never assigned: stored, not analysed.")]
    assigned_without_outcome: Annotated[int, Meta(description="Assigned units with no outcome: left out.")]


class HoldoutResults(Struct, frozen=True, tag="holdout", tag_field="kind"):
    """Lift per channel of a holdout experiment."""

    experiment_id: str
    confidence_level: float
    sequential: bool
    data_source: Annotated[
        Literal["observations", "outcomes"],
        Meta(description="Aggregate observations, or unit-level outcomes joined with the assignments in SQL."),
    ]
    outcomes: OutcomeCoverage | None
    channels: list[ChannelResult]
    chart: Annotated[dict[str, Any], Meta(description="Vega-Lite v5 forest plot of relative lift per channel.")]
    test_dates: Annotated[
        HoldoutTestDates | None,
        Meta(description="The test's dates: the days it actually ran, else its planned `test_period`; null if none."),
    ] = None
