"""The command-line reference of docs/cli.md, generated from `clearn`'s own argument parser:
`python docs/cli_reference.py` rewrites its generated block; tests/test_docs.py fails when the
page and the parser differ."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

from benchmarks.report import with_blocks  # noqa: E402
from clearn.app.cli import build_parser  # noqa: E402

CLI_PAGE = Path(__file__).resolve().parent / "cli.md"
WIDTH = "100"
"""Columns the help is wrapped to (argparse reads $COLUMNS), so the page is the same anywhere."""


@contextlib.contextmanager
def _columns(width: str) -> Iterator[None]:
    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = width
    try:
        yield
    finally:
        if before is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = before


def _help(parser: argparse.ArgumentParser, argv: list[str]) -> str:
    """What `clearn ARGV --help` prints."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.suppress(SystemExit):
        parser.parse_args([*argv, "--help"])
    return printed.getvalue().rstrip()


def cli_reference() -> str:
    """`clearn --help` and every subcommand's `--help`, as markdown sections."""
    parser = build_parser()
    commands = next(
        action.choices
        for action in parser._actions  # argparse's only handle on its subcommands
        if isinstance(action, argparse._SubParsersAction)
    )
    sections = []
    with _columns(WIDTH):
        for argv in [[], *([name] for name in commands)]:
            title = " ".join(["clearn", *argv])
            sections.append(f"### `{title}`\n\n```text\n{_help(parser, argv)}\n```\n")
    return "\n".join(sections)


def page_with_reference(page: Path = CLI_PAGE) -> str:
    """docs/cli.md with its generated block made from today's parser."""
    return with_blocks(page.read_text(), {"cli": cli_reference()})


if __name__ == "__main__":
    CLI_PAGE.write_text(page_with_reference())
    print(f"{CLI_PAGE} rewritten from clearn's parser")
