"""What may import what across the repository's top-level folders.

``pyproject.toml`` ships ``api`` and ``stats`` alone; everything else runs from a checkout: the tests, the
helpers they share with the benches and the example capture (``testkit``), the simulations, the benches and
the development scripts (``scripts``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OUTSIDE_TESTS = ("api", "stats", "bench", "simulations", "testkit", "scripts")
SHIPPED = ("api", "stats")
DEVELOPMENT = ("tests", "testkit", "simulations", "bench", "scripts")


def _imported_modules(path: Path) -> list[str]:
    modules: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            modules.append(node.module)
    return modules


def _imports_of(folder: Path, packages: tuple[str, ...]) -> list[str]:
    """``path: module`` for each import under ``folder`` of one of ``packages`` or a module inside one."""
    return [
        f"{path.relative_to(folder.parent)}: {module}"
        for path in sorted(folder.rglob("*.py"))
        for module in _imported_modules(path)
        if module.split(".")[0] in packages
    ]


def test_nothing_outside_tests_imports_tests() -> None:
    """Benches, the example capture, the simulations and the testkit share code through ``testkit`` and
    ``simulations``, never through the test suite."""
    assert [found for folder in OUTSIDE_TESTS for found in _imports_of(ROOT / folder, ("tests",))] == []


@pytest.mark.parametrize("folder", SHIPPED)
def test_the_shipped_packages_import_no_development_code(folder: str) -> None:
    """An installed service has no ``testkit``, ``simulations``, ``bench``, ``scripts`` or ``tests``: ``api``
    and ``stats`` never import them (the example capture, which needs ``testkit``, is in ``scripts/``)."""
    assert _imports_of(ROOT / folder, DEVELOPMENT) == []


def test_the_check_names_each_import_of_a_development_package(tmp_path: Path) -> None:
    """The check itself: ``testkit`` or ``simulations``, imported whole or from a submodule, is named; ``api`` not."""
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "capture.py").write_text(
        "import simulations.geo_simulation\nfrom testkit.database import make_key\nimport api.app\n"
    )
    assert _imports_of(tmp_path / "api", DEVELOPMENT) == [
        "api/capture.py: simulations.geo_simulation",
        "api/capture.py: testkit.database",
    ]
