"""`clearn compare`: several runs side by side, as a markdown table and one plot."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clearn.app.plots import plot_average_accuracy

__all__ = ["compare_runs", "load_results", "markdown_table"]


def load_results(folder: str | Path) -> dict[str, Any]:
    """The results.json of a run folder, with a clear error when it has none."""
    path = Path(folder) / "results.json"
    if not path.is_file():
        raise ValueError(f"{folder} holds no results.json: is it a finished `clearn run` folder?")
    return json.loads(path.read_text())


def _label(results: dict[str, Any]) -> str:
    label = results["strategy"]
    if results["strategy"] in ("epn", "packnet"):
        label += f" α={results['alpha']:g}"
    return label


def _cell(value: float | None, scale: float = 100.0, digits: int = 1) -> str:
    return "–" if value is None else f"{scale * value:.{digits}f}"


def markdown_table(runs: Sequence[dict[str, Any]]) -> str:
    """ACC, BWT, forgetting (all %), capacity used, free share and time, one row per run."""
    lines = [
        "| run | scenario | tasks | ACC % | BWT % | forgetting % | capacity used % | "
        "free % | train s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for results in runs:
        used = sum(results["capacity"]) if results.get("capacity") is not None else None
        lines.append(
            f"| {_label(results)} | {results['scenario']} | {results['tasks']} | "
            f"{_cell(results['acc'])} | {_cell(results['bwt'])} | "
            f"{_cell(results['forgetting'])} | {_cell(used)} | "
            f"{_cell(results.get('free_fraction'))} | {results['train_seconds']:.1f} |"
        )
    return "\n".join(lines)


def compare_runs(folders: Sequence[str | Path], out: str | Path) -> tuple[Path, Path]:
    """Write `comparison.md` and `average_accuracy.png` for the runs in `folders` into `out`."""
    runs = [load_results(folder) for folder in folders]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = out / "comparison.md"
    table.write_text(markdown_table(runs) + "\n")
    labels: dict[str, list] = {}
    for folder, results in zip(folders, runs, strict=True):
        label = f"{_label(results)} ({Path(folder).name})"
        labels[label] = results["accuracy_matrix"]
    plot = plot_average_accuracy(labels, out / "average_accuracy.png")
    return table, plot
