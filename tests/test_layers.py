"""The import contract: layers point one way, the core imports torch only, no hidden cycles."""

import ast
import tomllib
from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("clearn", "scenarios", "strategies")


def _contracts() -> list[dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["importlinter"]["contracts"]


def _core_modules() -> set[str]:
    """Every module of `clearn` outside the application (`clearn.app`, `python -m clearn`)."""
    modules = {"clearn"}
    for path in (ROOT / "clearn").glob("*.py"):
        if path.stem not in ("__init__", "__main__"):
            modules.add(f"clearn.{path.stem}")
    return modules


def test_import_contracts_are_kept(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert lint_imports(no_cache=True, no_logo=True) == 0


def test_every_core_module_is_bound_by_the_core_contract():
    (core,) = [c for c in _contracts() if c["name"].startswith("The core imports torch only")]
    assert _core_modules() == set(core["source_modules"])


def test_no_import_hides_inside_a_function():
    """An import inside a function hides an edge from the import graph (and from the contract)."""
    hidden = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    hidden += [
                        f"{path.relative_to(ROOT)}:{inner.lineno}"
                        for inner in ast.walk(node)
                        if isinstance(inner, ast.Import | ast.ImportFrom)
                    ]
    assert hidden == []
