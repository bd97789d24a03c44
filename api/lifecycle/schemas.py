"""What a deletion answers."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from msgspec import Meta, Struct


class Deletion(Struct, frozen=True):
    """What was deleted, table by table; the audit trail keeps one `deleted` event with the same figures."""

    id: UUID
    kind: Literal["experiment", "geo_dataset"]
    name: str
    rows_deleted: Annotated[dict[str, int], Meta(description="Rows removed per table.")]
    experiments_left: Annotated[
        list[UUID],
        Meta(
            description="Geo datasets: experiments (not running) that still name the dataset and can no longer "
            "be analysed."
        ),
    ] = []
