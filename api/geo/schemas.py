"""Request and response bodies of the geo resources (datasets and geo experiment results)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from msgspec import Meta, Struct, field

from api.backtests.schemas import GeoBacktest
from api.fields.interval import Interval
from api.fields.text import MarketName, Name
from stats.magnitude import MAX_MAGNITUDE

GeoMethod = Literal["synthetic_control", "augmented_synthetic_control", "tbr", "trimmed_match"]
GeoMissingPolicy = Literal["drop_market", "interpolate", "zero"]  # stats.geo.panel_gaps.MissingPolicy

# Panel values: not negative, and within the range the estimators can square and sum (stats.magnitude).
PanelValue = Annotated[float, Meta(ge=0.0, le=MAX_MAGNITUDE)]


class GeoRowIn(Struct, frozen=True, forbid_unknown_fields=True):
    """One panel cell: the KPI (and optionally the spend) of one market on one date."""

    date: date
    geo: MarketName
    kpi: Annotated[PanelValue, Meta(description="The outcome; must not be negative.")]
    spend: Annotated[PanelValue, Meta(description="Media spend in that market on that date.")] | None = None


class GeoRowTextDate(Struct, frozen=True, forbid_unknown_fields=True):
    """A panel cell whose date is written as the upload's `date_format` says (read into a `GeoRowIn`)."""

    date: str
    geo: MarketName
    kpi: PanelValue
    spend: PanelValue | None = None


class GeoDatasetTextDates(Struct, frozen=True, forbid_unknown_fields=True):
    """A JSON panel sent with `?date_format=`: its dates are read with that format."""

    rows: Annotated[list[GeoRowTextDate], Meta(min_length=2)]
    name: Name | None = None


class GeoDatasetUpload(Struct, frozen=True, forbid_unknown_fields=True):
    """A panel sent as JSON; the same columns may be sent as `text/csv` with a header line."""

    rows: Annotated[list[GeoRowIn], Meta(min_length=2, description="One row per (geo, date).")]
    name: Name | None = None


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


class GeoRowsAppend(Struct, frozen=True, forbid_unknown_fields=True):
    """Rows to add to a stored panel (a test's days as they arrive); the same rows may be sent as `text/csv`."""

    rows: Annotated[list[GeoRowIn], Meta(min_length=1, description="One row per (geo, date).")]


class GeoRowsAppendTextDates(Struct, frozen=True, forbid_unknown_fields=True):
    """Rows to append sent with `?date_format=`: their dates are read with that format."""

    rows: Annotated[list[GeoRowTextDate], Meta(min_length=1)]


DatasetVersion = Annotated[
    int,
    Meta(
        ge=1,
        le=2**31 - 1,
        description="The dataset version to read (1 is the upload, each append the next); default the latest.",
    ),
]


class GeoDataset(Struct, frozen=True):
    """A stored geo panel: its markets, its date axis and the data-quality findings, as of `version`."""

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
    workspace: Annotated[str, Meta(description="The workspace it belongs to (`counterfact workspaces list`).")]
    version: Annotated[
        int, Meta(description="The version described: 1 is the upload, each append adds one (the latest by default).")
    ] = 1
    latest_version: Annotated[int, Meta(description="The dataset's latest version.")] = 1
    version_created_at: Annotated[datetime | None, Meta(description="When the version described was written.")] = None


class GeoDatasetVersion(Struct, frozen=True):
    """One version of a dataset: what its upload or append added, and the dataset as it stood once written."""

    dataset_id: UUID
    version: int
    created_at: datetime
    created_by: Annotated[UUID | None, Meta(description="The id of the API key that wrote it.")]
    idempotency_key: Annotated[str | None, Meta(description="The `Idempotency-Key` it was sent with, if any.")]
    rows_added: int
    rows_replaced: Annotated[
        int,
        Meta(description="Earlier rows it corrected (`on_conflict=replace`); readable still at earlier versions."),
    ]
    added_first_date: Annotated[date, Meta(description="The earliest date among the rows it added.")]
    added_last_date: Annotated[date, Meta(description="The latest date among the rows it added.")]
    new_geos: Annotated[list[str], Meta(description="Markets it brought that no earlier version had.")]
    geo_count: int
    date_count: int
    row_count: Annotated[int, Meta(description="Rows of the dataset as of this version.")]
    first_date: date
    last_date: date
    has_spend: bool


class GeoDatasetVersions(Struct, frozen=True):
    """Every version of a dataset, oldest first."""

    dataset_id: UUID
    versions: list[GeoDatasetVersion]


class GeoDatasetAppend(Struct, frozen=True):
    """The version an append wrote, and the dataset as of it (its data-quality findings recomputed)."""

    appended: GeoDatasetVersion
    dataset: GeoDataset


class GeoDatasetSummary(Struct, frozen=True):
    """A dataset in a list: its name, markets, dates and versions (the latest)."""

    id: UUID
    name: str
    created_at: datetime
    created_by: UUID | None
    workspace: Annotated[str, Meta(description="The workspace it belongs to (`counterfact workspaces list`).")]
    versions: Annotated[int, Meta(description="How many versions it has (its latest version's number).")]
    geo_count: int
    geos: list[str]
    date_count: int
    row_count: int
    first_date: date
    last_date: date
    has_spend: bool


class GeoDatasetPage(Struct, frozen=True):
    """One page of datasets, newest first."""

    items: list[GeoDatasetSummary]
    next_cursor: str | None = None


class GeoObservation(Struct, frozen=True):
    """One stored row of a panel."""

    date: date
    geo: str
    kpi: float
    spend: float | None


class GeoSeries(Struct, frozen=True):
    """Rows of one market (`geo`) or of all markets (`geo` null), by market then date, as of `dataset_version`."""

    dataset_id: UUID
    geo: str | None
    rows: list[GeoObservation]
    dataset_version: int = 1


class GeoMarketDate(Struct, frozen=True):
    """A market and a date (a row the dataset lacks)."""

    geo: str
    date: date


class GeoTestCoverage(Struct, frozen=True):
    """What data a geo test's period holds so far: covered from its first day through `covered_through`, the last
    day on which every treated market and every control in use (a pair's geos; else every other market not
    excluded from the controls that has a row on every pre-period date) has a row, counting from the first test
    day, as of `dataset_version` (the dataset's latest)."""

    dataset_version: int
    complete: Annotated[bool, Meta(description="Every market in use has a row on every date of the test period.")]
    test_dates: Annotated[int, Meta(description="Dates of the test period on the dataset's date axis.")]
    covered_dates: Annotated[int, Meta(description="Dates covered, from the first test day.")]
    covered_through: Annotated[date | None, Meta(description="The last covered date; null before the first.")]
    markets_in_use: int
    missing_count: Annotated[int, Meta(description="Market-dates of the test period without a row, in all.")]
    missing_dates: Annotated[
        list[date], Meta(description="Every date of the test period on which a market in use has no row.")
    ]
    missing: Annotated[
        list[GeoMarketDate],
        Meta(description="The missing market-dates, by date then market; at most `listed_limit` of them."),
    ]
    listed_limit: int


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


class GeoCooldownEffect(Struct, frozen=True):
    """The lagged effect over the cool-down after the test, estimated apart from the test-period effect:
    the same method and pre-period fit, the cool-down dates in place of the test dates (trimmed match: each
    pair's KPI delta over the cool-down against its spend delta over the test)."""

    start: date
    end: date
    n_periods: int
    att: Interval
    incremental: Interval
    relative: Interval
    p_value: float | None
    iroas: Annotated[
        Interval | None, Meta(description="Lagged incremental KPI per unit of the test's incremental spend.")
    ]
    total_incremental: Annotated[
        float | None, Meta(description="Point estimate of the test-period plus cool-down incremental KPI.")
    ]


class GeoLook(Struct, frozen=True):
    """One daily look of a monitored geo test (``sequential=true``)."""

    day: Annotated[int, Meta(description="Test days observed at this look (1 = the first test day).")]
    date: date
    p_value_fixed_horizon: Annotated[
        float, Meta(description="The fixed-horizon p-value of that day's data: valid for that look alone.")
    ]
    nominal_level: Annotated[
        float,
        Meta(
            description="The level this look is held to (O'Brien-Fleming-type alpha spending over a look on every "
            "planned test day); 0 past the planned end."
        ),
    ]
    crossed: Annotated[bool, Meta(description="`p_value_fixed_horizon <= nominal_level`: the boundary was crossed.")]


class GeoMonitoring(Struct, frozen=True):
    """A geo result read as a group-sequential test with a look every day (``sequential=true``)."""

    spending: Literal["obrien_fleming"]
    planned_days: Annotated[int, Meta(description="Days of the experiment's test period.")]
    days_observed: Annotated[int, Meta(description="Test days in the data read.")]
    p_value: Annotated[
        float,
        Meta(
            description="Repeated p-value: the smallest alpha at which some look so far crossed its boundary. "
            "Valid however often the test is read; `p_value <= 1 - confidence_level` exactly when a look crossed."
        ),
    ]
    att: Annotated[
        Interval,
        Meta(description="ATT with the repeated confidence interval of this look (valid at every daily look)."),
    ]
    incremental: Annotated[Interval, Meta(description="Incremental KPI so far with the repeated interval.")]
    decision: Annotated[
        Literal["continue", "stop: effect detected", "stop: planned end"],
        Meta(
            description="`stop: effect detected` once a look crossed its boundary (the test may stop there with "
            "its error rate kept); `continue` before; `stop: planned end` when the planned days are in and no look "
            "crossed. No futility stop is offered: a test without a detectable effect runs to its planned end."
        ),
    ]
    decision_day: Annotated[int | None, Meta(description="The first look that crossed its boundary.")]
    decision_date: date | None
    nominal_level: Annotated[float, Meta(description="The level of the current look, at which `att` is inverted.")]
    looks: list[GeoLook]
    chart: Annotated[
        dict[str, Any],
        Meta(
            description="Vega-Lite v5 chart of the daily looks: each look's fixed-horizon p-value against its "
            "boundary on a log scale (values below 1e-6 drawn at 1e-6), the first crossing marked."
        ),
    ] = field(default_factory=dict)


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
            description=(
                "`interval`, or `non_convex` / `empty` when the accepted set of the inverted test is not one (the "
                "interval is then its hull). TBR: `interval` (its accepted set, always containing the estimate), "
                "`non_convex` (its hull), `unbounded` (the test accepts arbitrarily large effects: a side is null) "
                "or `could_not_be_built` (no interval around the estimate came out of the inversion: both sides "
                "null)."
            )
        ),
    ]
    iroas: Interval | None
    weights: dict[str, float]
    fit: dict[str, Any]
    series: list[GeoSeriesPoint]
    chart: dict[str, Any]
    warnings: list[str]
    excluded_from_controls: Annotated[
        list[str],
        Meta(
            description="Markets the experiment excludes from the controls (`exclude_from_controls`): in no "
            "donor pool or control group of this result."
        ),
    ] = field(default_factory=list)
    test_type: Annotated[
        Literal["holdback", "go-dark", "heavy-up"] | None,
        Meta(description="The experiment's `test_type`; null when it states none."),
    ] = None
    roi_kind: Annotated[
        Literal["average", "marginal"],
        Meta(
            description="`average`: iROAS is the return of the whole spend switched off or on (holdback, go-dark, "
            "or a campaign's `spend` with no test type); `marginal`: the return of the extra spend of a heavy-up "
            "on top of business as usual."
        ),
    ] = "average"
    cooldown: Annotated[
        GeoCooldownEffect | None, Meta(description="The lagged effect over `cooldown_period`, when the test has one.")
    ] = None
    residual_autocorrelation: Annotated[
        float | None,
        Meta(
            description="Lag-1 autocorrelation of the pre-period residuals (observed minus counterfactual, demeaned); "
            "its null standard error is about 1/sqrt(pre-period days). A warning says when it is strong."
        ),
    ] = None
    backtest: Annotated[
        GeoBacktest | None,
        Meta(
            description="The method on placebo windows of the test's length in the pre-period (same markets, no real "
            "effect), with the other methods on the same windows; null when the pre-period is too short (a warning "
            "says so)."
        ),
    ] = None
    interim: Annotated[
        bool,
        Meta(
            description="True when the data read does not cover the test period yet (the experiment runs, or an "
            "earlier `dataset_version` is read): the result is over the test days so far "
            "(`monitoring.days_observed` of `monitoring.planned_days`), read as a sequential test unless "
            "`sequential=false`."
        ),
    ] = False
    final: Annotated[
        bool,
        Meta(
            description="The experiment's final result: its whole test period, or, once it is stopped, the days "
            "its latest data holds (a test stopped early, by its decision or by its owner)."
        ),
    ] = True
    monitoring: Annotated[
        GeoMonitoring | None,
        Meta(
            description="`sequential=true` (the default of an interim result): the test held to a boundary at a "
            "look every day; the fixed-horizon `p_value` and intervals above stay beside it, valid for one look."
        ),
    ] = None
    dataset_version: Annotated[
        int | None, Meta(description="The version of the experiment's dataset the result read (`dataset_version`).")
    ] = None


class GeoCellResult(Struct, frozen=True):
    """One cell of a multi-cell geo test, estimated as a single-cell test whose controls (donor pool or
    control group) are only the markets treated by no cell."""

    name: str
    channel: str
    treatment_markets: list[str]
    spend: Annotated[
        float | None,
        Meta(
            description="The size of the cell's incremental cost: its `spend`, or with a `test_type` the sum of "
            "`spend_change` over its markets (a cut's iROAS is over the negative cost, as in a single-cell result)."
        ),
    ]
    results: Annotated[
        GeoResults,
        Meta(
            description="The cell's geo result, with the experiment's excluded markets, test type, ROI kind and "
            "cool-down; `backtest` and `residual_autocorrelation` are null (not run per cell, whose re-fits would "
            "multiply the cost by the cells: analyse a cell as its own experiment to backtest it)."
        ),
    ]


class GeoCellComparison(Struct, frozen=True):
    """Cell `first` minus cell `second` in the compared quantity, with the interval of the difference.

    The interval and `p_value` come from one joint conformal test that takes both cells' statistics on the
    same windows (a synthetic-control cell's residuals; a TBR cell's held-out, studentized window sums), so the
    correlation their shared controls induce is accounted for (`p_value <= 1 - confidence_level` exactly when
    the interval excludes 0)."""

    first: str
    second: str
    compared: Annotated[
        Literal["iroas", "relative_lift"],
        Meta(description="`iroas` when every cell has a spend, else `relative_lift` (incremental / counterfactual)."),
    ]
    difference: Annotated[Interval, Meta(description="first minus second: estimate and interval.")]
    p_value: Annotated[float | None, Meta(description="Test of no difference between the two cells.")]
    ci_status: Annotated[
        str, Meta(description="`interval`, or `non_convex` / `empty` when the accepted set is not one.")
    ]


class MultiCellGeoResults(Struct, frozen=True, tag="geo_cells", tag_field="kind"):
    """Results of a multi-cell geo experiment: each cell on its own, then every pair of cells compared.

    `warnings` holds what the data preparation did (missing market-days) once for all cells; each cell's
    result is post-processed as a single-cell result except for the backtest (see `cells[].results`)."""

    experiment_id: UUID
    method: GeoMethod
    confidence_level: float
    control_markets: Annotated[list[str], Meta(description="The shared controls: markets treated by no cell.")]
    cells: list[GeoCellResult]
    comparisons: Annotated[list[GeoCellComparison], Meta(description="Every pair of cells, in the cells' order.")]
    chart: dict[str, Any]
    warnings: list[str]
    dataset_version: Annotated[
        int | None, Meta(description="The version of the experiment's dataset the result read (`dataset_version`).")
    ] = None
