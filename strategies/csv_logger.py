"""Avalanche's CSVLogger, appending to the files of an earlier process instead of truncating,
and writing the capacity metrics too."""

from __future__ import annotations

from pathlib import Path

from avalanche.logging import CSVLogger

from strategies.metric_keys import CAPACITY

__all__ = ["AppendingCSVLogger"]

_FILES = ("training_results.csv", "eval_results.csv")
CAPACITY_FILE = "capacity.csv"
"""One row per capacity value (`Capacity/...`): Avalanche's CSV files hold accuracy and loss."""


def _rows_after_header(path: Path) -> str:
    if not path.is_file():
        return ""
    lines = path.read_text().splitlines(keepends=True)
    return "".join(lines[1:])


class AppendingCSVLogger(CSVLogger):
    """Avalanche 0.6.0's CSVLogger opens its files with "w": a resumed run would keep only
    its own rows. This one keeps the rows already there, then logs as Avalanche does; every
    capacity value goes to `capacity.csv` (metric, value, training iteration)."""

    def __init__(self, log_folder: str) -> None:
        earlier = {name: _rows_after_header(Path(log_folder) / name) for name in _FILES}
        super().__init__(log_folder)
        for name, handle in zip(_FILES, (self.training_file, self.eval_file), strict=True):
            handle.write(earlier[name])
            handle.flush()
        path = Path(self.log_folder) / CAPACITY_FILE
        new = not path.is_file()
        self.capacity_file = open(path, "a", buffering=1)  # noqa: SIM115 - closed by close()
        if new:
            self.capacity_file.write("metric,value,training_iteration\n")

    def log_single_metric(self, name, value, x_plot) -> None:
        if name.split("/")[0] == CAPACITY:
            self.capacity_file.write(f"{name},{value},{x_plot}\n")

    def close(self) -> None:
        super().close()
        self.capacity_file.close()
