"""Request and response bodies of the experiments resource."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from api.fields.text import NO_NUL, MarketName, Name
from api.geo.schemas import GeoTestCoverage

ExperimentStatus = Literal["draft", "running", "stopped"]
ExperimentKind = Literal["holdout", "geo"]

ChannelName = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
        description="Channel name: letters, digits, `_`, `.`, `-`; starts with a letter or digit.",
    ),
]
HoldoutFraction = Annotated[
    float, Meta(gt=0.0, lt=1.0, description="Share of units held out of this channel, strictly between 0 and 1.")
]
Alpha = Annotated[float, Meta(gt=0.0, lt=0.5, description="Significance level (two-sided tests use it whole).")]
Salt = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=128,
        pattern=NO_NUL,
        description="Hashing salt; generated when absent and never changed after creation.",
    ),
]


ExcludedFromControls = Annotated[
    list[MarketName],
    Meta(
        max_length=1000,
        description="Markets that may be contaminated by the treatment (neighbours, shared media areas): left out "
        "of the control group / donor pool of every analysis; neither treated nor a pair's control.",
    ),
]


GeoTestType = Literal["holdback", "go-dark", "heavy-up"]
TestTypeField = Annotated[
    GeoTestType,
    Meta(
        description="What the test measures: `holdback` (the campaign is withheld from the treated markets) and "
        "`go-dark` (the channel's spend is switched off there) cut spend and measure its average ROI; `heavy-up` "
        "adds spend on top of business as usual and measures the marginal ROI of the extra spend."
    ),
]
SpendChange = Annotated[
    dict[MarketName, Annotated[float, Meta(ge=-1e15, le=1e15)]],
    Meta(
        description="Per treatment market, the change in spend over the test period against business as usual: "
        "negative where spend is cut (`holdback`, `go-dark`), positive where it is added (`heavy-up`). Their sum "
        "is the incremental cost iROAS divides by (required with `test_type`; replaces `spend`)."
    ),
]
PlannedUnits = Annotated[
    int,
    Meta(
        ge=4,
        le=10**12,
        description="Units the test is planned to reach in all (both arms), e.g. the sample size from "
        "`POST /v1/power/holdout`. Sequential results then tune the mixture SPRT to that horizon.",
    ),
]


Workspace = Annotated[str, Meta(description="The workspace it belongs to (`counterfact workspaces list`).")]
CreatedBy = Annotated[
    UUID | None,
    Meta(
        description="The id of the API key that created it (`counterfact keys list` names it; "
        "`GET /v1/experiments/{id}/events` has the whole trail). Null when created outside the API."
    ),
]
UpdatedBy = Annotated[
    UUID | None,
    Meta(description="The id of the API key that last changed its status or design (at `updated_at`)."),
]


class ProportionMetricSpec(Struct, frozen=True, tag="proportion", tag_field="kind", forbid_unknown_fields=True):
    """A conversion metric: each unit converts or not."""

    baseline: Annotated[float, Meta(gt=0.0, lt=1.0, description="Expected holdout conversion rate.")] | None = None


class MeanMetricSpec(Struct, frozen=True, tag="mean", tag_field="kind", forbid_unknown_fields=True):
    """A continuous metric per unit, such as revenue."""

    baseline: Annotated[float, Meta(description="Expected holdout mean per unit.")] | None = None
    std_dev: Annotated[float, Meta(gt=0.0, description="Expected standard deviation per unit.")] | None = None


ExperimentMetric = ProportionMetricSpec | MeanMetricSpec


class ChannelSpec(Struct, frozen=True, forbid_unknown_fields=True):
    """One channel of a holdout test, hashed independently of the others."""

    name: ChannelName
    holdout_fraction: HoldoutFraction


class Period(Struct, frozen=True, forbid_unknown_fields=True):
    """An inclusive range of calendar dates."""

    start: date
    end: date


AssignmentRuleName = Literal["sha256", "blake2b"]
AssignmentRuleField = Annotated[
    AssignmentRuleName,
    Meta(
        description="How (salt, channel, unit) becomes an arm: `sha256` (the default; a warehouse can compute it, "
        "`GET /v1/experiments/{id}/assignment-rule` gives the SQL) or `blake2b` (the rule of experiments made "
        "before `sha256` existed). Fixed at creation, like the salt."
    ),
]


class ActualPeriod(Struct, frozen=True, forbid_unknown_fields=True):
    """The days a holdout test actually ran (UTC calendar dates): `end` is null while it runs."""

    start: Annotated[date, Meta(description="First day of the test.")]
    end: Annotated[date | None, Meta(description="Last day of the test; null while it still runs.")] = None


HoldoutTestPeriod = Annotated[
    Period,
    Meta(description="The planned dates of the test (first and last day); the actual ones are `actual_period`."),
]
StatedActualPeriod = Annotated[
    ActualPeriod,
    Meta(
        description="The days the test actually ran, stated in any status (a test imported after it ran, with "
        "its observations). Otherwise set from status changes: `running` sets `start` (today, UTC), `stopped` "
        "sets `end`, each unless already stated. Neither day may be later than tomorrow (UTC)."
    ),
]
TestDatesBasis = Literal["actual", "so_far", "planned"]


class HoldoutTestDates(Struct, frozen=True):
    """The dates results and exports use: the actual period, else the plan."""

    start: date
    end: date
    basis: Annotated[
        TestDatesBasis,
        Meta(
            description="`actual`: the days the test ran (`actual_period`); `so_far`: it started but has no end yet, "
            "so the end is today (UTC); `planned`: it has no actual dates, these are its `test_period`."
        ),
    ]


CooldownPeriod = Annotated[
    Period,
    Meta(
        description="Dates after the test period (starting after it ends) over which a lagged effect is "
        "estimated and reported apart (`cooldown` of the results)."
    ),
]


class HoldoutExperimentCreate(Struct, frozen=True, tag="holdout", tag_field="kind", forbid_unknown_fields=True):
    """A user-level holdout test across one or more channels."""

    name: Name
    metric: ExperimentMetric
    channels: Annotated[list[ChannelSpec], Meta(min_length=1, max_length=50)]
    alpha: Alpha = 0.05
    salt: Salt | None = None
    planned_units: PlannedUnits | None = None
    test_period: HoldoutTestPeriod | None = None
    actual_period: StatedActualPeriod | None = None
    assignment_rule: AssignmentRuleField = "sha256"


CellName = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
        description="Cell name: letters, digits, `_`, `.`, `-`; starts with a letter or digit; unique in the test.",
    ),
]
CellMarkets = Annotated[
    list[MarketName], Meta(min_length=1, max_length=1000, description="The markets this cell treats.")
]


class GeoCell(Struct, frozen=True, forbid_unknown_fields=True):
    """One cell of a multi-cell geo test: a channel (or strategy) run in its own markets.

    No market is in two cells; the controls of every cell are the markets treated by no cell.
    """

    name: CellName
    treatment_markets: CellMarkets
    channel: (
        Annotated[ChannelName, Meta(description="The cell's channel; the experiment's `channel` when absent.")] | None
    ) = None
    spend: Annotated[float, Meta(ge=0.0, description="Money spent on this cell's markets during the test.")] | None = (
        None
    )


GeoCells = Annotated[
    list[GeoCell],
    Meta(
        min_length=2,
        max_length=20,
        description="A multi-cell test: 2 or more cells in disjoint markets sharing the untreated markets as "
        "controls, given instead of `treatment_markets` (and of `spend`: each cell has its own).",
    ),
]


TrimRate = Annotated[
    float,
    Meta(
        ge=0.0,
        lt=0.5,
        description="Trimmed match (paired experiments): the share of pairs trimmed at each end, fixed before the "
        "test. Default (null): chosen from the data, as Google's package does, up to 25% (up to the 10% a matched-pair "
        "design simulated its figures with, for an experiment made from one), which can narrow the interval under "
        "heavy-tailed pair noise; a rate fixed in advance keeps its level.",
    ),
]


class GeoExperimentCreate(Struct, frozen=True, tag="geo", tag_field="kind", forbid_unknown_fields=True):
    """A market-level test on a stored geo panel: one treatment group (`treatment_markets`) or several `cells`."""

    name: Name
    dataset_id: UUID
    channel: ChannelName
    pre_period: Period
    test_period: Period
    treatment_markets: Annotated[list[MarketName], Meta(min_length=1, max_length=1000)] | None = None
    spend: Annotated[float, Meta(ge=0.0, description="Money spent on the test in the treated markets.")] | None = None
    pairs: (
        Annotated[
            list[Annotated[list[MarketName], Meta(min_length=2, max_length=2)]],
            Meta(description="Matched pairs `[treatment_geo, control_geo]`; treatment markets are the firsts."),
        ]
        | None
    ) = None
    cells: GeoCells | None = None
    exclude_from_controls: ExcludedFromControls = []
    test_type: TestTypeField | None = None
    spend_change: SpendChange | None = None
    cooldown_period: CooldownPeriod | None = None
    trim_rate: TrimRate | None = None


ExperimentCreate = HoldoutExperimentCreate | GeoExperimentCreate


class ExperimentPatch(Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """Fields to change. `status` moves `draft → running → stopped`; design fields change only in `draft`."""

    status: ExperimentStatus | UnsetType = UNSET
    name: Name | UnsetType = UNSET
    metric: ExperimentMetric | UnsetType = UNSET
    channels: Annotated[list[ChannelSpec], Meta(min_length=1, max_length=50)] | UnsetType = UNSET
    alpha: Alpha | UnsetType = UNSET
    planned_units: PlannedUnits | UnsetType | None = UNSET
    channel: ChannelName | UnsetType = UNSET
    treatment_markets: Annotated[list[MarketName], Meta(min_length=1, max_length=1000)] | UnsetType = UNSET
    pre_period: Period | UnsetType = UNSET
    test_period: Period | UnsetType = UNSET
    spend: Annotated[float, Meta(ge=0.0)] | UnsetType | None = UNSET
    cells: GeoCells | UnsetType = UNSET
    exclude_from_controls: ExcludedFromControls | UnsetType = UNSET
    test_type: TestTypeField | UnsetType | None = UNSET
    spend_change: SpendChange | UnsetType | None = UNSET
    cooldown_period: CooldownPeriod | UnsetType | None = UNSET
    trim_rate: TrimRate | UnsetType | None = UNSET
    dataset_id: (
        Annotated[
            UUID,
            Meta(
                description="Geo drafts: read another dataset (one holding the experiment's markets and pre-period, "
                "else 400 naming `dataset_id`), e.g. the one its test's days are appended to."
            ),
        ]
        | UnsetType
    ) = UNSET
    actual_period: StatedActualPeriod | UnsetType = UNSET


class HoldoutExperiment(Struct, frozen=True, tag="holdout", tag_field="kind"):
    """A stored holdout test."""

    id: UUID
    name: str
    status: ExperimentStatus
    metric: ExperimentMetric
    channels: list[ChannelSpec]
    alpha: float
    salt: str
    planned_units: int | None
    assignment_rule: AssignmentRuleField
    test_period: Annotated[Period | None, Meta(description="The planned dates of the test; null when not planned.")]
    actual_period: Annotated[
        ActualPeriod | None,
        Meta(description="The days the test actually ran, stated or set by `running` and `stopped`; null before."),
    ]
    test_dates: Annotated[
        HoldoutTestDates | None,
        Meta(description="The dates its results and calibration exports use: actual, else planned; null if neither."),
    ]
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None
    created_by: CreatedBy
    updated_by: UpdatedBy
    workspace: Workspace


class DesignSource(Struct, frozen=True, omit_defaults=True):
    """The design a geo experiment was created from: a market selection's job and candidate `rank`, or a
    matched-pair design's job (`kind` `matched_pairs`), the design's `pairs_kept` and randomization `seed`."""

    job_id: UUID
    kind: Literal["market_selection", "matched_pairs"] = "market_selection"
    rank: int | None = None
    pairs_kept: int | None = None
    seed: int | None = None


class GeoExperiment(Struct, frozen=True, tag="geo", tag_field="kind"):
    """A stored geo test."""

    id: UUID
    name: str
    status: ExperimentStatus
    dataset_id: UUID
    channel: str
    treatment_markets: Annotated[
        list[str], Meta(description="Every treated market (of every cell, in a multi-cell test).")
    ]
    pre_period: Period
    test_period: Period
    spend: float | None
    pairs: list[list[str]] | None
    cells: Annotated[
        list[GeoCell] | None, Meta(description="The cells of a multi-cell test; null for one treatment group.")
    ]
    exclude_from_controls: list[str]
    test_type: GeoTestType | None
    spend_change: dict[str, float] | None
    cooldown_period: Period | None
    trim_rate: Annotated[
        float | None, Meta(description="Trimmed match's trim rate fixed in advance; null: chosen from the data.")
    ]
    design_source: Annotated[
        DesignSource | None,
        Meta(
            description="The design this test was created from: a market selection (`POST /v1/geo/market-selection`) "
            "or a matched-pair design (`POST /v1/geo/matched-pairs`)."
        ),
    ]
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None
    created_by: CreatedBy
    updated_by: UpdatedBy
    workspace: Workspace
    coverage: Annotated[
        GeoTestCoverage | None,
        Meta(
            description="What the test period still lacks in the latest version of the dataset (`GET "
            "/v1/experiments/{id}` only; null in lists): covered through the last day on which every market in use "
            "has a row, and the missing market-dates. Results on a period not yet covered answer 409 naming them."
        ),
    ] = None


Experiment = HoldoutExperiment | GeoExperiment


class ExperimentPage(Struct, frozen=True):
    """One page of experiments, newest first."""

    items: list[Experiment]
    next_cursor: str | None = msgspec.field(default=None)
