"""Avalanche's CSVLogger, appending to the files of an earlier process instead of truncating."""

from __future__ import annotations

from pathlib import Path

from avalanche.logging import CSVLogger

__all__ = ["AppendingCSVLogger"]

_FILES = ("training_results.csv", "eval_results.csv")


def _rows_after_header(path: Path) -> str:
    if not path.is_file():
        return ""
    lines = path.read_text().splitlines(keepends=True)
    return "".join(lines[1:])


class AppendingCSVLogger(CSVLogger):
    """Avalanche 0.6.0's CSVLogger opens its files with "w": a resumed run would keep only
    its own rows. This one keeps the rows already there, then logs as Avalanche does."""

    def __init__(self, log_folder: str) -> None:
        earlier = {name: _rows_after_header(Path(log_folder) / name) for name in _FILES}
        super().__init__(log_folder)
        for name, handle in zip(_FILES, (self.training_file, self.eval_file), strict=True):
            handle.write(earlier[name])
            handle.flush()
