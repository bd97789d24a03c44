"""Request and response bodies of the assignments resource."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from msgspec import Meta, Struct

MAX_UNITS_PER_REQUEST = 10_000
MAX_UNIT_LENGTH = 256  # characters: a JSON Schema's maxLength counts characters, so the document can say it
#: A unit id holds no NUL, carriage return or line feed (a CSV line or a log line could not carry it).
UNIT_ID_PATTERN = "^[^\\u0000\\r\\n]*$"

Arm = Literal["treatment", "holdout"]
UnitId = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_UNIT_LENGTH,
        pattern=UNIT_ID_PATTERN,
        description="A unit (user) id: 1 to 256 characters, without NUL, carriage return or line feed.",
        examples=["user-8f3a2c"],
    ),
]


class AssignmentRequest(Struct, frozen=True, forbid_unknown_fields=True):
    """Units to assign; each is assigned once and read back on later calls."""

    units: Annotated[
        list[UnitId],
        Meta(min_length=1, max_length=MAX_UNITS_PER_REQUEST, description="Up to 10,000 unit ids per call."),
    ]


class UnitAssignment(Struct, frozen=True):
    """One unit's arm in every channel of the experiment."""

    unit: Annotated[str, Meta(description="The unit id.")]
    arms: Annotated[dict[str, Arm], Meta(description="Channel name → `treatment` or `holdout`.")]
    assigned_at: Annotated[datetime, Meta(description="When the unit was first assigned (stored).")]


class AssignmentBatch(Struct, frozen=True):
    """The arms of the units of a JSON request, in request order (a repeated unit appears once)."""

    experiment_id: UUID
    assignments: list[UnitAssignment]


class BulkAssignmentResult(Struct, frozen=True):
    """What a CSV bulk upload did."""

    experiment_id: UUID
    units_received: Annotated[int, Meta(description="Data lines read (units, repeats included).")]
    units_assigned: Annotated[int, Meta(description="Units stored by this upload (new to the experiment).")]
    units_skipped: Annotated[
        int, Meta(description="Lines that changed nothing: units already assigned, or repeated in the upload.")
    ]
    channels: Annotated[int, Meta(description="Channels each unit was assigned in.")]
    rows_inserted: Annotated[int, Meta(description="(unit, channel) rows stored.")]


class AssignmentPage(Struct, frozen=True):
    """A page of stored assignments, in unit order."""

    items: list[UnitAssignment]
    next_cursor: Annotated[str | None, Meta(description="Pass as `cursor` for the next page; null at the end.")]


class ArmCount(Struct, frozen=True):
    """Units observed in an arm and the count the planned split expects."""

    observed: int
    expected: float


class ChannelSummary(Struct, frozen=True):
    """Arm sizes of one channel and their sample-ratio-mismatch test."""

    channel: str
    holdout_fraction: float
    units: int
    treatment: ArmCount
    holdout: ArmCount
    srm_statistic: Annotated[float | None, Meta(description="Pearson chi-square (1 df); null with no units.")]
    srm_p_value: Annotated[float | None, Meta(description="P(χ²₁ ≥ statistic); null with no units.")]
    srm_flagged: Annotated[bool, Meta(description="True when `srm_p_value` < `srm_threshold`.")]


class AssignmentSummary(Struct, frozen=True):
    """Counts per channel and arm, with a sample-ratio-mismatch check per channel."""

    experiment_id: UUID
    srm_threshold: float
    srm_flagged: Annotated[bool, Meta(description="True when any channel is flagged.")]
    channels: list[ChannelSummary]


class RuleChannel(Struct, frozen=True):
    """One channel as the assignment rule sees it."""

    name: str
    holdout_fraction: float
    threshold: Annotated[
        int | None,
        Meta(
            description="`sha256`: `floor(holdout_fraction × 2^52 + 1/2)`, the integer a unit's 52-bit hash is "
            "compared with (holdout when below). Null for `blake2b`, which compares a fraction."
        ),
    ]
    message_prefix_hex: Annotated[
        str,
        Meta(
            description="The bytes every unit's message starts with, `UTF-8(salt ␟ channel ␟)` (␟ = 0x1F), in "
            "lowercase hex: append the unit's UTF-8 bytes and hash."
        ),
    ]


class WarehouseQueries(Struct, frozen=True):
    """The rule as SQL, by dialect: a query over a table `units(unit)` returning `unit, channel, arm`."""

    postgresql: Annotated[str, Meta(description="PostgreSQL 11 or later (tested on a million units).")]
    duckdb: Annotated[str, Meta(description="DuckDB 1.1 or later (tested on a million units).")]
    bigquery: Annotated[str, Meta(description="BigQuery (GoogleSQL): the same arithmetic, untested here.")]
    snowflake: Annotated[str, Meta(description="Snowflake: the same arithmetic, untested here.")]


class AssignmentRule(Struct, frozen=True):
    """What a caller needs to compute a holdout experiment's arms itself, where its data lives."""

    experiment_id: UUID
    rule: Annotated[Literal["sha256", "blake2b"], Meta(description="The experiment's `assignment_rule`.")]
    formula: Annotated[str, Meta(description="The rule in words and integer arithmetic.")]
    salt: str
    channels: list[RuleChannel]
    sql: Annotated[
        WarehouseQueries | None,
        Meta(description="Ready-to-run queries; null for `blake2b`, which no SQL warehouse computes."),
    ]
