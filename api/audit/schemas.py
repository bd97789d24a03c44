"""What the audit trail answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from msgspec import Meta, Struct

EventAction = Literal[
    "created",
    "status_changed",
    "design_changed",
    "assignments_loaded",
    "observations_stored",
    "outcomes_stored",
    "spend_stored",
    "results_read",
    "results_requested",
    "calibration_exported",
    "calibration_requested",
    "deleted",
    "rows_appended",
]


class EventKey(Struct, frozen=True):
    """The API key that acted (never the key itself): its id, and its name at the time."""

    id: UUID
    name: str


class AuditEvent(Struct, frozen=True):
    """One thing that happened to an experiment."""

    id: Annotated[int, Meta(description="Increases with time; events are listed in this order.")]
    experiment_id: UUID
    action: EventAction
    at: datetime
    key: Annotated[EventKey | None, Meta(description="Null when done outside the API (e.g. by the service itself).")]
    details: Annotated[
        dict[str, Any],
        Meta(description="What changed: statuses, field names, counts of units and rows, results' headline figures."),
    ]


class AuditEventPage(Struct, frozen=True):
    """A page of an experiment's events, oldest first."""

    items: list[AuditEvent]
    next_cursor: str | None


class GeoDatasetEvent(Struct, frozen=True):
    """One thing that happened to a geo dataset: uploaded (`created`, with its counts) or `deleted`."""

    id: Annotated[int, Meta(description="Increases with time; events are listed in this order.")]
    dataset_id: UUID
    action: EventAction
    at: datetime
    key: Annotated[EventKey | None, Meta(description="Null when done outside the API (e.g. by the service itself).")]
    details: Annotated[
        dict[str, Any], Meta(description="Name and counts of geos, dates and rows; rows deleted with it.")
    ]


class GeoDatasetEventPage(Struct, frozen=True):
    """A page of a geo dataset's events, oldest first."""

    items: list[GeoDatasetEvent]
    next_cursor: str | None
