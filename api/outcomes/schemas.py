"""Request and response bodies of unit-level outcomes and channel spend."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from api.assignments.schemas import UnitId

MAX_OUTCOMES_PER_REQUEST = 10_000
MAX_ABS_VALUE = 1e12
MAX_UNASSIGNED_EXAMPLES = 10

OutcomeValue = Annotated[
    float,
    Meta(
        ge=-MAX_ABS_VALUE,
        le=MAX_ABS_VALUE,
        description="The unit's outcome in the test period: 0 or 1 for a conversion (proportion) metric; "
        "any finite number (e.g. revenue) for a mean metric.",
    ),
]


class UnitOutcome(Struct, frozen=True, forbid_unknown_fields=True):
    """One unit's outcome and, for CUPED, the same metric measured before the test."""

    unit: UnitId
    value: OutcomeValue
    covariate: (
        Annotated[
            float,
            Meta(
                ge=-MAX_ABS_VALUE,
                le=MAX_ABS_VALUE,
                description="Pre-period value of the metric for CUPED; send it for every unit or for none.",
            ),
        ]
        | None
    ) = None


class OutcomesUpload(Struct, frozen=True, forbid_unknown_fields=True):
    """Up to 10,000 unit outcomes; larger uploads go as streamed `text/csv`."""

    outcomes: Annotated[
        list[UnitOutcome],
        Meta(min_length=1, max_length=MAX_OUTCOMES_PER_REQUEST, description="Each unit at most once per call."),
    ]


class OutcomesAccepted(Struct, frozen=True):
    """What an outcomes upload stored."""

    experiment_id: str
    received: Annotated[int, Meta(description="Outcome rows in the request.")]
    inserted: Annotated[int, Meta(description="Units whose outcome was stored for the first time.")]
    replaced: Annotated[int, Meta(description="Units whose earlier outcome this upload replaced.")]
    unassigned: Annotated[
        int,
        Meta(
            description="Units in this upload that were never assigned in the experiment. Their outcomes are "
            "stored but cannot enter the analysis until the unit is assigned; results report them too."
        ),
    ]
    unassigned_examples: Annotated[list[str], Meta(description="Up to 10 of those unit ids, in byte order.")]


class ChannelSpend(Struct, frozen=True, forbid_unknown_fields=True):
    """Money spent on one channel's treated arm during the test."""

    channel: Annotated[str, Meta(min_length=1, max_length=64)]
    spend: Annotated[float, Meta(ge=0.0, le=1e15)]
    value_per_conversion: (
        Annotated[float, Meta(gt=0.0, le=1e12, description="Conversion metrics: the value of one conversion.")] | None
    ) = None


class SpendUpload(Struct, frozen=True, forbid_unknown_fields=True):
    """Spend per channel; sending a channel again replaces its figures."""

    channels: Annotated[list[ChannelSpend], Meta(min_length=1, max_length=200)]


class SpendAccepted(Struct, frozen=True):
    experiment_id: str
    channels: list[ChannelSpend]
