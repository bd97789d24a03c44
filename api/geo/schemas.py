"""Request and response bodies of the geo resources (datasets and geo experiment results)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from msgspec import Meta, Struct

from api.interval import Interval

GeoMethod = Literal["synthetic_control", "augmented_synthetic_control", "tbr", "trimmed_match"]

NO_NUL = r"^[^\x00]*$"
DatasetName = Annotated[str, Meta(min_length=1, max_length=200, pattern=NO_NUL, description="A human-readable name.")]
GeoLabel = Annotated[
    str, Meta(min_length=1, max_length=200, pattern=NO_NUL, description="Market name, as in the panel.")
]
NonNegative = Annotated[float, Meta(ge=0.0)]


class GeoRowIn(Struct, frozen=True, forbid_unknown_fields=True):
    """One panel cell: the KPI (and optionally the spend) of one market on one date."""

    date: date
    geo: GeoLabel
    kpi: Annotated[NonNegative, Meta(description="The outcome; must not be negative.")]
    spend: Annotated[NonNegative, Meta(description="Media spend in that market on that date.")] | None = None


class GeoDatasetUpload(Struct, frozen=True, forbid_unknown_fields=True):
    """A panel sent as JSON; the same columns may be sent as `text/csv` with a header line."""

    rows: Annotated[list[GeoRowIn], Meta(min_length=2, description="One row per (geo, date).")]
    name: DatasetName | None = None


class MissingDates(Struct, frozen=True):
    """A market without a value on `missing_count` dates of the panel's axis; the earliest few listed."""

    geo: str
    missing_count: int
    first_missing: list[date]


class ZeroRun(Struct, frozen=True):
    """`length` consecutive dates (`start`..`end`) on which `geo` reported exactly 0."""

    geo: str
    start: date
    end: date
    length: int


class Outlier(Struct, frozen=True):
    """A value far from its market's median (robust z-score, 1.4826 MAD)."""

    geo: str
    date: date
    value: float
    robust_z: float


class DataQuality(Struct, frozen=True):
    """Findings on the uploaded panel; lists hold at most `listed_limit` entries each, counts are complete."""

    date_step_days: int
    total_missing: int
    missing_geo_count: int
    zero_run_count: int
    outlier_count: int
    listed_limit: int
    missing: list[MissingDates]
    zero_runs: list[ZeroRun]
    outliers: list[Outlier]


class GeoDataset(Struct, frozen=True):
    """A stored geo panel: its markets, its date axis and the data-quality findings."""

    id: UUID
    name: str
    created_at: datetime
    geo_count: int
    geos: list[str]
    date_count: int
    row_count: int
    first_date: date
    last_date: date
    has_spend: bool
    quality: DataQuality
    created_by: Annotated[
        UUID | None,
        Meta(
            description="The id of the API key that uploaded it (`counterfact keys list` names it; "
            "`GET /v1/geo/datasets/{id}/events` has its trail)."
        ),
    ]


class GeoObservation(Struct, frozen=True):
    """One stored row of a panel."""

    date: date
    geo: str
    kpi: float
    spend: float | None


class GeoSeries(Struct, frozen=True):
    """Rows of one market (`geo`) or of all markets (`geo` null), by market then date."""

    dataset_id: UUID
    geo: str | None
    rows: list[GeoObservation]


class GeoLiftInterval(Struct, frozen=True):
    """Absolute lift (ATT per treated market per test day) and relative lift (incremental / counterfactual)."""

    absolute: Interval
    relative: Interval


class GeoSeriesPoint(Struct, frozen=True):
    """Treated markets' total on one date and its counterfactual; bands only on test dates."""

    date: date
    observed: float
    counterfactual: float
    ci_low: float | None
    ci_high: float | None


class GeoResults(Struct, frozen=True, tag="geo", tag_field="kind"):
    """Results of a geo experiment (see DESIGN.md "Result shapes")."""

    experiment_id: UUID
    method: GeoMethod
    confidence_level: float
    att: Interval
    incremental: Interval
    lift: GeoLiftInterval
    p_value: Annotated[
        float | None,
        Meta(
            description="Test of no average effect over the test period (conformal, `|sum of post-period "
            "residuals|`, moving-block permutations; TBR: the same block-permutation test on its regression "
            "residuals). The intervals invert this same test, so `p_value <= 1 - confidence_level` exactly when "
            "the ATT interval excludes 0. `trimmed_match`: the studentized trimmed-mean test of iROAS = 0 at the "
            "chosen trim rate, the test its iROAS interval inverts; `p_value <= 1 - confidence_level` exactly when "
            "the iROAS interval excludes 0 (`fit.p_value_method`)."
        ),
    ]
    p_value_iid: Annotated[float | None, Meta(description="The same test with iid permutations.")]
    p_value_sharp_null: Annotated[
        float | None,
        Meta(
            description='GeoLift\'s p-value (`stat_test = "Total"`: sum of |post-period residuals|, iid '
            "permutations): tests that the campaign changed nothing on any day. It also reacts to effects that "
            "vary from day to day, so it can be small while the ATT interval holds 0; it answers a different "
            "question from `p_value` and is not inverted into an interval (its inverted set need not contain "
            "the estimate). Not computed for TBR."
        ),
    ]
    placebo_p_value: Annotated[
        float | None, Meta(description="In-space placebo: rank of the treated effect among donors treated in turn.")
    ]
    ci_status: Annotated[
        str | None,
        Meta(
            description="`interval`, or `non_convex` / `empty` when the accepted set of the inverted test is not one."
        ),
    ]
    iroas: Interval | None
    weights: dict[str, float]
    fit: dict[str, Any]
    series: list[GeoSeriesPoint]
    chart: dict[str, Any]
    warnings: list[str]
