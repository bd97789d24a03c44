"""A built wheel carries what the service reads at run time besides its modules: the migrations and the
OpenAPI document's captured examples.

Before, a wheel shipped neither: installed from it, the service found no ``sql/`` and migrated nothing (every
request then failed on missing tables), and its document lost its examples.
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from api.db.database import load_migrations, migrations_directory

ROOT = Path(__file__).resolve().parents[1]
UV = ROOT / ".uv" / "bin" / "uv"  # the Makefile's uv (UV_ENV)


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The files of a wheel built from a copy of the tree (the build writes into the tree it builds)."""
    source = tmp_path_factory.mktemp("source")
    for folder in ("api", "stats", "sql"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    output = tmp_path_factory.mktemp("wheel")
    uv = str(UV) if UV.exists() else shutil.which("uv")
    assert uv is not None, "no uv: run `make .venv/.installed` first"
    command = [uv, "build", "--wheel", "--quiet", "--out-dir", str(output), str(source)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    (wheel,) = output.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_the_wheel_installs_every_migration_where_the_service_looks_for_them(wheel_names: list[str]) -> None:
    shipped = {Path(name).name for name in wheel_names if "/data/share/counterfact/sql/" in name}
    assert shipped == {path.name for path in (ROOT / "sql").glob("*.sql")}


def test_the_wheel_ships_the_documents_examples(wheel_names: list[str]) -> None:
    shipped = {Path(name).name for name in wheel_names if name.startswith("api/examples/") and name.endswith(".json")}
    assert shipped == {path.name for path in (ROOT / "api" / "examples").glob("*.json")}


def test_the_source_trees_migrations_come_first(tmp_path: Path) -> None:
    (tmp_path / "tree" / "sql").mkdir(parents=True)
    assert migrations_directory(tmp_path / "tree", tmp_path / "prefix") == tmp_path / "tree" / "sql"


def test_without_a_source_tree_the_migrations_are_the_installed_ones(tmp_path: Path) -> None:
    installed = tmp_path / "prefix" / "share" / "counterfact" / "sql"
    assert migrations_directory(tmp_path / "site-packages", tmp_path / "prefix") == installed


def test_an_install_without_migrations_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="no migrations"):
        load_migrations(tmp_path)
