"""A geo experiment's design as stored (``experiments.design``, JSON), read back as a typed structure.

Every reader of a stored geo design (results, their backtest, coverage) decodes it once with
:func:`stored_geo_design` and reads fields, not string keys of a dictionary: a field renamed or retyped
fails here, at the decoding, not deep in a computation.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from msgspec import Struct

from api.experiments.schemas import DesignSource, GeoCell, GeoTestType, Period
from api.http.errors import InvalidInput


class StoredGeoDesign(Struct, frozen=True):
    """The design fields of a stored geo experiment (those of :class:`api.experiments.schemas.GeoExperiment`)."""

    dataset_id: UUID
    channel: str
    treatment_markets: list[str]
    pre_period: Period
    test_period: Period
    spend: float | None = None
    pairs: list[list[str]] | None = None
    cells: list[GeoCell] | None = None
    exclude_from_controls: list[str] = []
    test_type: GeoTestType | None = None
    spend_change: dict[str, float] | None = None
    cooldown_period: Period | None = None
    trim_rate: float | None = None
    design_source: DesignSource | None = None

    @property
    def incremental_cost(self) -> float | None:
        """What iROAS divides by: the sum of ``spend_change`` (negative when the test cuts spend), else ``spend``."""
        if self.spend_change:
            return float(sum(self.spend_change.values()))
        return self.spend

    @property
    def markets_used(self) -> list[str]:
        """Treated markets and pair geos, sorted."""
        return sorted({*self.treatment_markets, *(geo for pair in self.pairs or [] for geo in pair)})


def stored_geo_design(design: Any) -> StoredGeoDesign:
    """The typed design of a stored geo experiment (its ``design`` column: a dict, or JSON text)."""
    if isinstance(design, str | bytes):
        design = msgspec.json.decode(design)
    if not isinstance(design, dict):
        raise InvalidInput("The experiment carries no geo design")
    return msgspec.convert(design, StoredGeoDesign)
