"""The docs site builds with no warning, and its generated parts follow the code: the API
reference is read from the docstrings at build time, the command-line page from the parser."""

import importlib.util
import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _cli_reference():
    spec = importlib.util.spec_from_file_location("cli_reference", DOCS / "cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_docs_site_builds_with_no_warning(tmp_path):
    """`mkdocs build --strict` (what `make docs` runs): a broken link, a missing page or a
    docstring mkdocstrings cannot read fails it."""
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    for page in ("index.html", "design/index.html", "cli/index.html", "api/clearn/index.html"):
        assert (tmp_path / page).is_file(), page
    assert (tmp_path / "assets" / "results" / "peers.png").is_file()


def test_the_command_line_page_is_the_parsers_help():
    cli = _cli_reference()
    assert cli.page_with_reference() == cli.CLI_PAGE.read_text(), (
        "docs/cli.md differs from clearn's parser: run python docs/cli_reference.py"
    )
    assert "### `clearn run`" in cli.CLI_PAGE.read_text()


def test_every_package_has_its_api_reference_page():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for package in config["tool"]["importlinter"]["root_packages"]:
        page = DOCS / "api" / f"{package}.md"
        assert f"::: {package}\n" in page.read_text(), package
