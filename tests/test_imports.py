"""What may import what across the repository's top-level folders."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTSIDE_TESTS = ("api", "stats", "bench", "simulations", "testkit")


def _imported_modules(path: Path) -> list[str]:
    modules: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            modules.append(node.module)
    return modules


def test_nothing_outside_tests_imports_tests() -> None:
    """Benches, the example capture, the simulations and the testkit share code through ``testkit`` and
    ``simulations``, never through the test suite."""
    offenders = [
        f"{path.relative_to(ROOT)}: {module}"
        for folder in OUTSIDE_TESTS
        for path in sorted((ROOT / folder).rglob("*.py"))
        for module in _imported_modules(path)
        if module == "tests" or module.startswith("tests.")
    ]
    assert offenders == []
