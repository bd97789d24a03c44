"""Market names as people type them, matched to a dataset's own spelling.

GeoLift lower-cases every location, so ``Chicago`` and ``chicago`` are one market there; here a request may
name a market in any case and is answered in the dataset's spelling. Because of that, a dataset may not hold
two markets that differ only by case (refused at upload). An unknown name is refused with the closest known
names (``difflib``), so a typo names its fix. Every place a request names markets uses :class:`MarketNames`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from uuid import UUID

from api.http.errors import InvalidInput, invalid_field

CLOSEST = 3  # known names suggested for an unknown one
LISTED_WHEN_NONE_CLOSE = 5  # known names shown when none is close


class MarketNames:
    """A dataset's markets, looked up regardless of case (an exact spelling wins over a case-folded one)."""

    def __init__(self, known: Iterable[str], dataset_id: UUID | str) -> None:
        self.known = tuple(known)
        self.dataset_id = dataset_id
        self._exact = frozenset(self.known)
        self._folded: dict[str, str] = {}
        for name in self.known:
            self._folded.setdefault(name.casefold(), name)

    def spelling(self, name: str) -> str | None:
        """The dataset's spelling of ``name``, or ``None`` when the dataset has no such market."""
        return name if name in self._exact else self._folded.get(name.casefold())

    def canonical(self, name: str) -> str:
        """The dataset's spelling of ``name``; an unknown name unchanged (refused later, where it is checked)."""
        return self.spelling(name) or name

    def resolve(self, field: str, names: Sequence[str]) -> list[str]:
        """The dataset's spellings of ``names``; 400 naming ``field`` with the closest known names otherwise."""
        unknown = [name for name in names if self.spelling(name) is None]
        if unknown:
            raise self.unknown(field, unknown)
        return [self.canonical(name) for name in names]

    def unknown(self, field: str, names: Sequence[str]) -> InvalidInput:
        """The 400 for ``names`` (unknown markets) in ``field``, each with the known names closest to it."""
        return invalid_field(field, f"not in dataset {self.dataset_id}: " + "; ".join(map(self._described, names)))

    def closest(self, name: str) -> list[str]:
        """Up to :data:`CLOSEST` known markets most like ``name`` (case aside), best first."""
        matches = difflib.get_close_matches(name.casefold(), list(self._folded), n=CLOSEST, cutoff=0.6)
        return [self._folded[match] for match in matches]

    def _described(self, name: str) -> str:
        closest = self.closest(name)
        if closest:
            return f"{name!r} (closest: {', '.join(map(repr, closest))})"
        shown = ", ".join(map(repr, sorted(self.known)[:LISTED_WHEN_NONE_CLOSE]))
        more = f", … ({len(self.known)} in all)" if len(self.known) > LISTED_WHEN_NONE_CLOSE else ""
        return f"{name!r} (no known market is close; the dataset has {shown}{more})"


def case_variants(names: Iterable[str]) -> list[list[str]]:
    """Groups of distinct names that differ only by case (``["Chicago", "chicago"]``), in order of appearance."""
    groups: dict[str, list[str]] = {}
    for name in names:
        group = groups.setdefault(name.casefold(), [])
        if name not in group:
            group.append(name)
    return [group for group in groups.values() if len(group) > 1]
