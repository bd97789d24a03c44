"""Request and response bodies of matched-pair geo designs (trimmed_match's design)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from msgspec import Meta, Struct, field

from api.experiments.schemas import ChannelName, TrimRate
from api.fields.text import MarketName, Name
from api.geo.schemas import DatasetVersion
from api.geo_design.schemas import HistoryPeriod

PairTestType = Literal["holdback", "go-dark", "heavy-up"]
Budget = Annotated[float, Meta(gt=0.0, le=1e15, description="Money spent on the test in the treated markets.")]
Iroas = Annotated[
    float,
    Meta(
        ge=1e-6,
        le=1e6,
        description="Incremental return on ad spend (response per unit spend); at least 1e-6, or the budget "
        "that reaches it overflows.",
    ),
]
Seed = Annotated[int, Meta(ge=0, le=2**63 - 1, description="Seed of the randomization (generated when absent).")]


class MatchingWeights(Struct, frozen=True, forbid_unknown_fields=True):
    """Weights of the metrics geos are paired on (each normalized by its total over the geos)."""

    response: Annotated[float, Meta(ge=0.0, le=1e6)] = 1.0
    spend: Annotated[float, Meta(ge=0.0, le=1e6)] = 0.01


class MatchedPairsRequest(Struct, frozen=True, forbid_unknown_fields=True):
    """A randomized matched-pair design on a stored geo panel (always a job)."""

    dataset_id: UUID
    budgets: Annotated[
        list[Budget],
        Meta(max_length=5, description="Budgets to evaluate; the minimum detectable iROAS is reported for each."),
    ] = []
    target_iroas: Annotated[
        Iroas | None,
        Meta(description="The iROAS the test should detect; each design reports the budget it needs for that."),
    ] = None
    pre_period: Annotated[
        HistoryPeriod | None,
        Meta(
            description="The history the design uses (training plus evaluation window); the whole dataset by default."
        ),
    ] = None
    evaluation_period: Annotated[
        HistoryPeriod | None,
        Meta(
            description="A window as long as the planned test, inside the pre-period, on which each design is "
            "simulated; the pairing uses the rest of the pre-period. Default: its last 28 days."
        ),
    ] = None
    test_type: Annotated[
        PairTestType,
        Meta(description="`holdback`: spend starts in treated geos; `go-dark`: it stops there; `heavy-up`: it grows."),
    ] = "holdback"
    pair_counts: Annotated[
        list[Annotated[int, Meta(ge=3, le=5000)]],
        Meta(max_length=500, description="Numbers of pairs to keep (the least similar dropped). Default: 10 to all."),
    ] = []
    exclude: Annotated[list[MarketName], Meta(max_length=5000, description="Geos left out of the design.")] = []
    pairs: Annotated[
        list[Annotated[list[MarketName], Meta(min_length=2, max_length=2)]] | None,
        Meta(description="Pairs to evaluate instead of pairing the geos (each geo at most once)."),
    ] = None
    matching_weights: MatchingWeights = MatchingWeights()
    simulations: Annotated[int, Meta(ge=10, le=5000, description="Random assignments simulated per design.")] = 200
    alpha: Annotated[float, Meta(gt=0.0, lt=0.5, description="Level of the one-sided test of iROAS = 0.")] = 0.1
    power_target: Annotated[float, Meta(gt=0.0, lt=1.0, description="Power at the minimum detectable iROAS.")] = 0.8
    seed: Seed | None = None
    dataset_version: DatasetVersion | None = None


class DesignPair(Struct, frozen=True):
    """One pair of a design, randomized: `treatment` is treated, `control` is not."""

    pair: Annotated[int, Meta(description="The pair's number in the full pairing: 1 is the least similar.")]
    treatment: str
    control: str
    distance: Annotated[float, Meta(description="Weighted normalized distance of the two geos' training metrics.")]


class BudgetEvaluation(Struct, frozen=True):
    """The design's simulated iROAS estimate at one budget (no true effect: the design colab's A/A)."""

    budget: float
    rmse: Annotated[float, Meta(description="Root mean squared error of the trimmed match iROAS estimate.")]
    rmse_std: Annotated[float, Meta(description="Monte Carlo standard error of `rmse` (delta method).")]
    bias: float
    trim_rate: Annotated[float, Meta(description="Mean trim rate the estimator chose.")]
    minimum_detectable_iroas: Annotated[
        float, Meta(description="rmse x (z(1 - alpha) + z(power_target)): the iROAS the test detects with that power.")
    ]
    minimum_detectable_lift: Annotated[
        float | None,
        Meta(description="budget x minimum_detectable_iroas over the treatment group's response (null when 0)."),
    ]
    budget_for_target_iroas: Annotated[
        float | None, Meta(description="budget x minimum_detectable_iroas / target_iroas (null without a target).")
    ]


class AssignmentCheck(Struct, frozen=True):
    """How the design's randomization was drawn and the balance checks it passed."""

    seed: int
    balanced: Annotated[
        bool, Meta(description="It passed both checks (else no draw of 200 did, and this is the first draw).")
    ]
    draws: Annotated[int, Meta(description="Draws from the seed until one passed both checks.")]
    sign_test_positives: Annotated[
        int, Meta(description="Pairs whose treatment geo had the larger response in the latest window.")
    ]
    aa_ci_low: Annotated[
        float | None,
        Meta(description="The A/A trimmed match interval on the evaluation window (covers 0 when balanced)."),
    ]
    aa_ci_high: float | None


class PairDesign(Struct, frozen=True):
    """The design keeping `pairs_kept` pairs: its randomized pairs and simulated precision."""

    pairs_kept: int
    pairs_dropped: int
    pairs: list[DesignPair]
    treatment_markets: list[str]
    evaluation_response: Annotated[float, Meta(description="Both groups' response over the evaluation window.")]
    evaluation_spend: Annotated[float, Meta(description="Both groups' spend (or its proxy) over that window.")]
    treatment_response: Annotated[float, Meta(description="The treatment group's response over that window.")]
    share_of_spend: Annotated[float, Meta(description="The pairs' share of all the design's geos' spend.")]
    rmse_cost_adjusted: Annotated[
        float,
        Meta(
            description="The first budget's RMSE over share_of_spend (the design colab's ranking), the RMSE from a "
            "second set of simulated assignments, independent of `budgets`' figures: the recommended design's "
            "reported figures are then not the luck of being ranked first."
        ),
    ]
    budgets: list[BudgetEvaluation]
    assignment: AssignmentCheck | None
    warnings: list[str]


class MatchedPairsResult(Struct, frozen=True, tag="matched_pairs", tag_field="kind"):
    """Designs per number of pairs kept, most pairs first; `recommended` is the design colab's choice (`kind`:
    `matched_pairs`)."""

    dataset_id: UUID
    test_type: PairTestType
    pre_period: HistoryPeriod
    evaluation_period: HistoryPeriod
    training_days: int
    evaluation_days: int
    seed: int
    simulations: int
    alpha: float
    power_target: float
    target_iroas: float | None
    spend_proxy: Annotated[
        Literal["spend", "response"],
        Meta(description="What a geo's incremental spend is proportional to (response when the panel has no spend)."),
    ]
    excluded: list[str]
    left_out: Annotated[str | None, Meta(description="The geo left unpaired for an odd count (largest response).")]
    designs: list[PairDesign]
    recommended: Annotated[
        int | None, Meta(description="pairs_kept of the design with the smallest rmse_cost_adjusted.")
    ]
    method: str
    warnings: list[str]
    chart: Annotated[
        dict[str, Any],
        Meta(
            description="Vega-Lite v5 spec: minimum detectable iROAS against pairs kept, one line per budget, the "
            "recommended design marked (as trimmed_match's design colab plots it); also `GET /v1/jobs/{id}?format=svg`."
        ),
    ] = field(default_factory=dict)  # designs stored before charts were added have none
    dataset_version: Annotated[int, Meta(description="The version of the dataset the design read.")] = 1


class ExperimentFromPairDesign(Struct, frozen=True, forbid_unknown_fields=True):
    """A paired geo experiment made of one design of a finished matched-pair design job."""

    pairs_kept: Annotated[int, Meta(ge=1, description="The design: how many pairs it keeps.")]
    name: Name
    channel: ChannelName
    test_period: Annotated[
        HistoryPeriod | None,
        Meta(
            description="When the test runs; as long as the evaluation window. Default: that length from the day "
            "after the pre-period ends."
        ),
    ] = None
    spend: Annotated[float, Meta(ge=0.0, description="Money spent on the test in the treated markets.")] | None = None
    trim_rate: TrimRate | None = None
