"""The import structure: folders that import each other, and code that imports the tests.

A folder of ``api/`` is one package, ``api/<resource>/``; the modules at the api root
(``app.py``, ``errors.py``, ``openapi_examples.py``…) together count as one more folder, ``api/``.
No two folders may import each other, directly or round a longer loop: a shared folder (the root's
modules included) never imports the folders that use it; what a resource adds to something shared
(its job result type, its audit headline, its OpenAPI examples) is handed over at the composition
root (``api/app.py``, ``api/cli.py``, ``api/worker_tasks.py``). The modules are parsed, not
imported, so the check sees every import, those under ``if TYPE_CHECKING:`` and inside functions
included, and runs none of them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
API = PROJECT / "api"
# The modules that assemble the application: they import every resource, and nothing imports them.
COMPOSITION_ROOT = {"api.app", "api.cli", "api.worker_tasks"}


@dataclass(frozen=True)
class Import:
    """One import statement: the module that holds it, its line and the module it names."""

    source: str
    line: int
    target: str


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def python_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*.py") if "__pycache__" not in path.parts)


def is_module(name: str) -> bool:
    path = PROJECT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_of(path: Path) -> Iterator[Import]:
    """Every module that ``path`` names in an import, relative imports resolved."""
    source = module_name(path)
    package = source if path.name == "__init__.py" else source.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(source, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            yield Import(source, node.lineno, base)
            # ``from api import jobs`` names the package ``api.jobs``, not only ``api``.
            for alias in node.names:
                if is_module(f"{base}.{alias.name}"):
                    yield Import(source, node.lineno, f"{base}.{alias.name}")


def folder_of(module: str) -> str | None:
    """The folder of ``api`` a module belongs to, or None for a module outside ``api``.

    The composition root is a folder of its own: it stands above everything, where the root's
    shared modules stand below every resource.
    """
    parts = module.split(".")
    if parts[0] != "api" or len(parts) == 1:
        return None  # outside api, or ``from api import x``: the alias names the module
    if module in COMPOSITION_ROOT:
        return "composition root"
    if (API / parts[1] / "__init__.py").is_file():
        return f"api/{parts[1]}"
    if (API / f"{parts[1]}.py").is_file():
        return "api"
    return None


def folder_edges() -> dict[tuple[str, str], list[Import]]:
    """Folder -> folder, with the imports that draw each arrow."""
    edges: dict[tuple[str, str], list[Import]] = {}
    for path in python_files(API):
        for found in imports_of(path):
            source, target = folder_of(found.source), folder_of(found.target)
            if source is None or target is None or source == target:
                continue
            edges.setdefault((source, target), []).append(found)
    return edges


def circles(edges: dict[tuple[str, str], list[Import]]) -> list[list[str]]:
    """The strongly connected groups of two folders or more (Tarjan), each sorted."""
    graph: dict[str, list[str]] = {}
    for source, target in edges:
        graph.setdefault(source, []).append(target)
        graph.setdefault(target, [])
    index: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = lowest[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                lowest[node] = min(lowest[node], lowest[successor])
            elif successor in on_stack:
                lowest[node] = min(lowest[node], index[successor])
        if lowest[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def describe(group: list[str], edges: dict[tuple[str, str], list[Import]]) -> str:
    members = set(group)
    arrows = []
    for (source, target), found in sorted(edges.items()):
        if source in members and target in members:
            first = found[0]
            arrows.append(f"  {source} -> {target} ({first.source}:{first.line} imports {first.target})")
    return " <-> ".join(group) + "\n" + "\n".join(arrows)


def test_no_two_api_folders_import_each_other() -> None:
    edges = folder_edges()
    found = circles(edges)
    assert not found, "folders of api/ that import each other:\n" + "\n".join(describe(group, edges) for group in found)


def test_the_api_roots_shared_modules_import_no_resource() -> None:
    offending = [
        f"{found.source}:{found.line} imports {found.target}"
        for (source, _), imports in sorted(folder_edges().items())
        if source == "api"
        for found in imports
    ]
    assert not offending, "the api root's shared modules import resources:\n" + "\n".join(offending)


def test_the_check_finds_a_circle_between_two_folders() -> None:
    """The check itself: two folders importing each other make one circle, named with its imports."""
    edges = {
        ("api/jobs", "api/results"): [Import("api.jobs.schemas", 3, "api.results.schemas")],
        ("api/results", "api/jobs"): [Import("api.results.service", 7, "api.jobs.answer")],
        ("api/results", "api"): [Import("api.results.service", 8, "api.http.errors")],
    }
    assert circles(edges) == [["api/jobs", "api/results"]]
    assert "api.jobs.schemas:3 imports api.results.schemas" in describe(["api/jobs", "api/results"], edges)


@pytest.mark.parametrize("folder", ["api", "stats"])
def test_no_code_outside_tests_imports_the_tests(folder: str) -> None:
    offending = [
        f"{found.source}:{found.line} imports {found.target}"
        for path in python_files(PROJECT / folder)
        for found in imports_of(path)
        if found.target == "tests" or found.target.startswith("tests.")
    ]
    assert not offending, "\n".join(offending)


def test_stats_imports_nothing_from_api() -> None:
    offending = [
        f"{found.source}:{found.line} imports {found.target}"
        for path in python_files(PROJECT / "stats")
        for found in imports_of(path)
        if found.target == "api" or found.target.startswith("api.")
    ]
    assert not offending, "\n".join(offending)
