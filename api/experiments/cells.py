"""Multi-cell geo designs: several cells in disjoint markets, one pool of controls (the untreated markets).

A multi-cell experiment stores its ``cells`` in the design and, as ``treatment_markets``, every market
some cell treats, so everything that reads a geo design's treated markets (the collision check with
running experiments, the panel window of the results) sees the whole treated set unchanged.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec

from api.db.database import Connection
from api.experiments.schemas import GeoCell
from api.geo.markets import MarketNames
from api.geo.repository import GeoRepository
from api.http.errors import invalid_field


def check_cells(
    cells: list[GeoCell] | None,
    treatment_markets: list[str] | None,
    spend: float | None,
    pairs: list[list[str]] | None,
) -> None:
    """400 naming the field unless the design has exactly one of ``treatment_markets`` and ``cells``, and
    its cells have unique names, at least one market each and no market in two cells (nor ``pairs`` or an
    experiment-wide ``spend`` beside them)."""
    if cells is None:
        if treatment_markets is None:
            raise invalid_field("treatment_markets", "is required unless the experiment has `cells`")
        return
    if treatment_markets is not None:
        raise invalid_field("cells", "give either `treatment_markets` (one treatment group) or `cells`, not both")
    if pairs is not None:
        raise invalid_field("cells", "a multi-cell test cannot also have matched `pairs`")
    if spend is not None:
        raise invalid_field("spend", "a multi-cell test has a spend per cell (`cells[i].spend`), not one in all")
    if len(cells) < 2:
        raise invalid_field("cells", "a multi-cell test needs at least 2 cells")
    names: dict[str, int] = {}
    owner: dict[str, int] = {}
    for i, cell in enumerate(cells):
        if cell.name in names:
            raise invalid_field(f"cells[{i}].name", f"{cell.name!r} is also the name of cells[{names[cell.name]}]")
        names[cell.name] = i
        if not cell.treatment_markets:
            raise invalid_field(f"cells[{i}].treatment_markets", "a cell needs at least one market")
        for market in cell.treatment_markets:
            if market in owner:
                where = "twice in this cell" if owner[market] == i else f"also in cells[{owner[market]}]"
                raise invalid_field(f"cells[{i}].treatment_markets", f"{market!r} is {where}")
            owner[market] = i


def treated_markets(cells: list[GeoCell]) -> list[str]:
    """Every market some cell treats, sorted."""
    return sorted({market for cell in cells for market in cell.treatment_markets})


def stored_cells(design: dict[str, Any]) -> list[GeoCell] | None:
    """The cells of a stored geo design (a cell without a channel has the experiment's), or ``None`` for a
    single treatment group."""
    raw = design.get("cells")
    if raw is None:
        return None
    cells = msgspec.convert(raw, list[GeoCell])
    return [c if c.channel else msgspec.structs.replace(c, channel=str(design["channel"])) for c in cells]


async def check_cells_in_dataset(connection: Connection, dataset_id: UUID, cells: list[GeoCell]) -> None:
    """400 naming ``cells[i].treatment_markets`` for a market the dataset does not have (a missing dataset is
    left to :func:`api.geo.service.validate_geo_design`, which names ``dataset_id``)."""
    dataset = await GeoRepository(connection).get(dataset_id)
    if dataset is None:
        return
    names = MarketNames(dataset["geos"], dataset_id)
    for i, cell in enumerate(cells):
        names.resolve(f"cells[{i}].treatment_markets", cell.treatment_markets)
