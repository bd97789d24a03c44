"""Request and response bodies of geo-lift test design: power for given markets, and market selection."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from msgspec import Meta, Struct

from api.backtests.schemas import GeoBacktest
from api.experiments.schemas import ChannelName
from api.fields.text import MarketName, Name
from api.geo.schemas import DatasetVersion

DesignMethod = Literal["synthetic_control", "augmented_synthetic_control"]
TestSide = Literal["two-sided", "larger", "smaller"]

DesignExclusions = Annotated[
    list[MarketName],
    Meta(
        max_length=1000,
        description="Markets that may be contaminated by the treatment (neighbours, shared media areas): left "
        "out of the donor pool of every simulation, and never treated.",
    ),
]
Duration = Annotated[int, Meta(ge=1, le=366, description="Test length in days.")]
EffectSize = Annotated[
    float,
    Meta(gt=-1.0, le=10.0, description="Relative lift injected into the treated markets, e.g. 0.05 for +5%."),
]
DesignAlpha = Annotated[
    float, Meta(gt=0.0, lt=0.5, description="Significance level of the test (default 0.1, as GeoLift).")
]
PowerTarget = Annotated[float, Meta(gt=0.0, lt=1.0, description="Power the MDE must reach (default 0.8).")]
LookbackWindows = Annotated[
    int,
    Meta(
        ge=1,
        le=60,
        description="Historical windows simulated per duration: the last N stretches of the test's length, each "
        "one day earlier (GeoLift's `lookback_window`).",
    ),
]
CostPerKpi = Annotated[
    float, Meta(gt=0.0, le=1e12, description="Cost of one unit of KPI; gives the investment needed at the MDE.")
]


class HistoryPeriod(Struct, frozen=True, forbid_unknown_fields=True):
    """The dates of the dataset the design may use (both ends included); the whole dataset by default."""

    start: date
    end: date


class HoldoutBounds(Struct, frozen=True, forbid_unknown_fields=True):
    """Share of the total KPI left untreated that a design must keep, between `min` and `max`."""

    min: Annotated[float, Meta(ge=0.0, le=1.0)]
    max: Annotated[float, Meta(ge=0.0, le=1.0)]


class GeoPowerRequest(Struct, frozen=True, forbid_unknown_fields=True):
    """Power of a geo-lift test on given treatment markets (GeoLift's `GeoLiftPower`)."""

    dataset_id: UUID
    treatment_markets: Annotated[list[MarketName], Meta(min_length=1, max_length=500)]
    durations: Annotated[list[Duration], Meta(min_length=1, max_length=20)]
    effect_sizes: Annotated[list[EffectSize], Meta(min_length=1, max_length=101)]
    lookback_windows: LookbackWindows = 1
    alpha: DesignAlpha = 0.1
    power_target: PowerTarget = 0.8
    side: TestSide = "two-sided"
    method: DesignMethod = "synthetic_control"
    fixed_effects: bool = True
    cost_per_kpi: CostPerKpi | None = None
    history: HistoryPeriod | None = None
    exclude_from_controls: DesignExclusions = []
    monitoring: Annotated[
        Literal["none", "daily"],
        Meta(
            description="`daily`: the test will be read every day with `sequential=true`; each duration then "
            "reports `monitored`, the power of that plan, the share stopped early and the expected days to a "
            "decision (two-sided tests only)."
        ),
    ] = "none"
    dataset_version: DatasetVersion | None = None


class PowerCurvePoint(Struct, frozen=True):
    """Power at one effect size."""

    effect_size: float
    power: Annotated[
        float,
        Meta(
            description="Probability that the test detects this effect: averaged over the simulated windows, each "
            "with its noise drawn afresh from the history's own residual paths, and over the uncertainty of the "
            "noise's scale given the history (the predictive power). At effect 0 it is the false-positive rate, "
            "at most `alpha`."
        ),
    ]
    detected: Annotated[
        float,
        Meta(
            description="Share of the simulated windows in which the test on the actual history detected the "
            'effect (GeoLift\'s "power": 0 or 1 with one window).'
        ),
    ]


class MonitoredPowerPoint(Struct, frozen=True):
    """The test of one effect size read every day (`monitoring: daily`) against the same test read once."""

    effect_size: float
    power: Annotated[float, Meta(description="Chance some daily look crosses its boundary.")]
    fixed_horizon_power: Annotated[float, Meta(description="`power_curve`'s power: the test read once, at its end.")]
    power_cost: Annotated[float, Meta(description="`fixed_horizon_power - power`: what the daily looks cost.")]
    stopped_early: Annotated[float, Meta(description="Chance the test stops before its last day.")]
    expected_days_to_decision: Annotated[
        float, Meta(description="Mean days until a look crosses its boundary (the whole test when none does).")
    ]


class DesignFit(Struct, frozen=True):
    """The synthetic control fitted on the days before the latest simulated window."""

    pre_rmse: Annotated[float, Meta(description="RMSE of the treated markets' average, in KPI units per market-day.")]
    scaled_l2_imbalance: Annotated[
        float | None, Meta(description="Imbalance of the fit over that of uniform weights (augsynth's; 0 is perfect).")
    ]
    lift_at_zero: Annotated[
        float | None,
        Meta(
            description="Relative lift the fit estimates on the latest window with no effect injected (bias; "
            "GeoLift's abs_lift_in_zero is its absolute value)."
        ),
    ]


class DurationDesign(Struct, frozen=True):
    """Simulated power of the design for one test length."""

    duration: int
    windows: int
    power_curve: list[PowerCurvePoint]
    mde: Annotated[
        float | None,
        Meta(description="Smallest effect of the grid whose power reaches `power_target` (null when none does)."),
    ]
    mde_exact: Annotated[
        float | None, Meta(description="The effect between grid points where the power reaches `power_target`.")
    ]
    power_at_mde: float | None
    investment: Annotated[
        float | None,
        Meta(description="cost_per_kpi x treated KPI over the latest window x MDE (null without cost or MDE)."),
    ]
    treated_kpi: Annotated[float, Meta(description="The treated markets' KPI over the latest window of this length.")]
    fit: DesignFit
    backtest: GeoBacktest | None
    monitored: Annotated[
        list[MonitoredPowerPoint] | None,
        Meta(description="With `monitoring: daily`: the power of the test read every day, per effect size."),
    ] = None


class GeoPowerResult(Struct, frozen=True, tag="geo_power", tag_field="kind"):
    """Power per effect size and duration for given treatment markets, with a chart (`kind`: `geo_power`)."""

    dataset_id: UUID
    treatment_markets: list[str]
    method: DesignMethod
    side: TestSide
    alpha: float
    power_target: float
    lookback_windows: int
    treatment_share: Annotated[float, Meta(description="The treated markets' share of the KPI over the history.")]
    history: HistoryPeriod
    durations: list[DurationDesign]
    test: Annotated[str, Meta(description="The test simulated: the one experiment results run.")]
    warnings: list[str]
    chart: Annotated[dict[str, Any], Meta(description="Vega-Lite v5 power curves, one line per duration.")]
    excluded_from_controls: list[str] = []
    dataset_version: Annotated[int, Meta(description="The version of the dataset the design read.")] = 1


class MarketSelectionRequest(Struct, frozen=True, forbid_unknown_fields=True):
    """Which markets, how many and how long: rank candidate treatment sets by simulated power (always a job)."""

    dataset_id: UUID
    treatment_sizes: Annotated[
        list[Annotated[int, Meta(ge=1, le=1000)]], Meta(min_length=1, max_length=20, description="e.g. [2, 3, 4, 5]")
    ]
    durations: Annotated[list[Duration], Meta(min_length=1, max_length=10)]
    effect_sizes: Annotated[list[EffectSize], Meta(min_length=1, max_length=41)]
    lookback_windows: LookbackWindows = 1
    alpha: DesignAlpha = 0.1
    power_target: PowerTarget = 0.8
    side: TestSide = "two-sided"
    method: DesignMethod = "synthetic_control"
    fixed_effects: bool = True
    include: Annotated[list[MarketName], Meta(max_length=100, description="Markets every candidate must treat.")] = []
    exclude: Annotated[list[MarketName], Meta(max_length=1000, description="Markets no candidate may treat.")] = []
    cost_per_kpi: CostPerKpi | None = None
    budget: Annotated[float, Meta(gt=0.0, le=1e15, description="Most a design may cost at its MDE.")] | None = None
    holdout: HoldoutBounds | None = None
    top: Annotated[int, Meta(ge=1, le=200, description="How many designs to return, best first.")] = 10
    search_budget: Annotated[
        int, Meta(ge=0, le=20000, description="Score evaluations the swap search may spend beyond GeoLift's sets.")
    ] = 400
    history: HistoryPeriod | None = None
    cells: (
        Annotated[
            int,
            Meta(
                ge=2,
                le=10,
                description="A multi-cell test: rank treatment sets for this many cells at once. The markets are dealt "
                "into as many partitions by total KPI (GeoLift's systematic sampling) and each cell's candidates come "
                "from its own partition, simulated with the partition's other markets as controls, so no market is in "
                "two cells and no cell's controls are treated by another; design r is every cell's candidate r. Not "
                "with `include`.",
            ),
        ]
        | None
    ) = None
    exclude_from_controls: DesignExclusions = []
    monitoring: Annotated[
        Literal["none", "daily"],
        Meta(
            description="`daily`: each candidate reports `monitored`, its test read every day with `sequential=true` "
            "(two-sided, single-cell designs only)."
        ),
    ] = "none"
    dataset_version: DatasetVersion | None = None


class MarketCandidate(Struct, frozen=True):
    """One design: treatment markets and a test length, with its simulated power."""

    rank: int
    markets: list[str]
    duration: int
    mde: float
    mde_exact: float | None
    power_at_mde: float
    investment: float | None
    treatment_share: float
    holdout_share: Annotated[float, Meta(description="Share of KPI left untreated (treated share if the MDE < 0).")]
    power_curve: list[PowerCurvePoint]
    fit: DesignFit
    backtest: GeoBacktest | None
    source: Annotated[
        Literal["correlation", "swap_search"],
        Meta(description="GeoLift's correlation sets, or the swap search beyond them."),
    ]
    warnings: list[str]
    monitored: Annotated[
        list[MonitoredPowerPoint] | None,
        Meta(description="With `monitoring: daily`: the power of the test read every day, per effect size."),
    ] = None


class DroppedConstraint(Struct, frozen=True):
    """How many designs one constraint removed, and what to relax to let them back in."""

    reason: str
    count: int
    relax: str


class MarketSelectionCell(Struct, frozen=True):
    """One cell of a multi-cell market selection: its partition of the markets and its ranked candidates."""

    cell: Annotated[int, Meta(description="1-based: the cell's place in the design.")]
    partition: Annotated[list[str], Meta(description="The markets this cell's candidates and controls come from.")]
    candidates: list[MarketCandidate]
    qualified: int
    dropped: list[DroppedConstraint]


class MarketSelectionResult(Struct, frozen=True, tag="market_selection", tag_field="kind"):
    """Ranked designs, best first; when none qualifies, `dropped` says why and what to relax (`kind`:
    `market_selection`)."""

    dataset_id: UUID
    candidates: list[MarketCandidate]
    considered: Annotated[int, Meta(description="Designs simulated (candidate sets x durations).")]
    qualified: Annotated[int, Meta(description="Designs that met every constraint (the first `top` are listed).")]
    dropped: list[DroppedConstraint]
    ranking: Annotated[str, Meta(description="How the candidates were ordered.")]
    test: str
    history: HistoryPeriod
    warnings: list[str]
    chart: Annotated[dict[str, Any], Meta(description="Vega-Lite v5 power curves of the listed candidates.")]
    cells: Annotated[
        list[MarketSelectionCell] | None,
        Meta(
            description="A multi-cell selection (`cells` in the request): each cell's ranked candidates; then "
            "`candidates` is empty and `considered`/`qualified` sum over the cells."
        ),
    ] = None
    excluded_from_controls: Annotated[
        list[str], Meta(description="Left out of every simulation; carried into an experiment made of a candidate.")
    ] = []
    dataset_version: Annotated[int, Meta(description="The version of the dataset the selection read.")] = 1


class ExperimentFromDesign(Struct, frozen=True, forbid_unknown_fields=True):
    """A geo experiment made of one candidate of a finished market selection."""

    rank: Annotated[int, Meta(ge=1, description="The candidate's rank in the selection's result.")]
    name: Name
    channel: ChannelName
    test_period: Annotated[
        HistoryPeriod | None,
        Meta(
            description="When the test runs; its length must be the candidate's duration. Default: the "
            "candidate's duration from the day after the selection's history ends."
        ),
    ] = None
    spend: Annotated[float, Meta(ge=0.0, description="Money spent on the test in the treated markets.")] | None = None
