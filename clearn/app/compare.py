"""`clearn compare`: several runs side by side, as a markdown table and one plot."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from clearn.app.plots import plot_average_accuracy
from clearn.app.results import RunResult
from clearn.app.tables import markdown_table, number, percent

__all__ = ["compare_runs", "comparison_table"]


def comparison_table(runs: Sequence[RunResult]) -> str:
    """ACC, BWT, forgetting (all %), capacity used, free share and time, one row per run."""
    header = [
        "run", "scenario", "tasks", "ACC %", "BWT %", "forgetting %", "capacity used %",
        "free %", "train s",
    ]
    rows = [
        [
            run.label, run.scenario, run.tasks, percent(run.acc), percent(run.bwt),
            percent(run.forgetting), percent(run.capacity_used), percent(run.free_fraction),
            number(run.train_seconds),
        ]
        for run in runs
    ]
    return markdown_table(header, rows)


def compare_runs(folders: Sequence[str | Path], out: str | Path) -> tuple[Path, Path]:
    """Write `comparison.md` and `average_accuracy.png` for the runs in `folders` into `out`."""
    runs = [RunResult.read(folder) for folder in folders]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = out / "comparison.md"
    table.write_text(comparison_table(runs) + "\n")
    curves = {
        f"{run.label} ({Path(folder).name})": run.accuracy_matrix
        for folder, run in zip(folders, runs, strict=True)
    }
    plot = plot_average_accuracy(curves, out / "average_accuracy.png")
    return table, plot
