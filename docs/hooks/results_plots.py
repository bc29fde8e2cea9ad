"""MkDocs hook: the plots that benchmarks write to `benchmarks/results/` are part of the site.

A results page links its plots where they lie in the repository (`../../benchmarks/results/
x.png` from `docs/results/`), so that the page reads right on a code host too; this hook copies
those plots into the site under `assets/results/` and points the links there."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parents[2]
PLOTS = ROOT / "benchmarks" / "results"
SITE_FOLDER = "assets/results"
_LINK = re.compile(r"\]\((?P<target>[^)\s]+\.png)\)")


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add every plot of benchmarks/results/ to the site."""
    for plot in sorted(PLOTS.rglob("*.png")):
        uri = f"{SITE_FOLDER}/{plot.relative_to(PLOTS).as_posix()}"
        files.append(File.generated(config, uri, abs_src_path=str(plot)))
    return files


def on_page_markdown(markdown: str, page: Page, **_: object) -> str:
    """Point a page's links to benchmarks/results/ plots at their copies in the site."""
    page_folder = (Path(page.file.abs_src_path or "")).parent

    def relink(match: re.Match[str]) -> str:
        target = (page_folder / match["target"]).resolve()
        if not target.is_relative_to(PLOTS):
            return match.group(0)
        uri = f"{SITE_FOLDER}/{target.relative_to(PLOTS).as_posix()}"
        return f"]({posixpath.relpath(uri, posixpath.dirname(page.file.src_uri))})"

    return _LINK.sub(relink, markdown)
