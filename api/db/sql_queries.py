"""Load named SQL statements from a ``.sql`` file (``-- name: query_name`` headers, as aiosql does)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

_HEADER = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def load_queries(path: Path) -> Mapping[str, str]:
    """Map each ``-- name:`` header in ``path`` to the statement below it (comments kept)."""
    text = path.read_text(encoding="utf-8")
    parts = _HEADER.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise RuntimeError(f"{path.name}: query {name!r} is defined twice")
        queries[name] = body.strip().rstrip(";")
    return MappingProxyType(queries)
