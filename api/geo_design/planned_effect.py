"""The effect a geo experiment was designed to detect, read back from the market selection it came from."""

from __future__ import annotations

import msgspec

from api.db.database import Connection
from api.experiments.schemas import DesignSource
from api.geo_design.repository import MarketSelectionRepository
from api.geo_design.schemas import MarketSelectionResult


async def planned_effect(connection: Connection, source: DesignSource | None) -> float | None:
    """The MDE of the market-selection candidate the experiment was created from (``None`` when none)."""
    if source is None or source.kind != "market_selection":
        return None
    row = await MarketSelectionRepository(connection).get(source.job_id)
    if row is None:
        return None
    result = row["result"]
    selection = (
        msgspec.json.decode(result, type=MarketSelectionResult)
        if isinstance(result, str | bytes)
        else (msgspec.convert(result, MarketSelectionResult))
    )
    for candidate in selection.candidates:
        if candidate.rank == source.rank:
            effect = candidate.mde_exact or candidate.mde
            return float(effect) if effect else None
    return None
