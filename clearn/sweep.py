"""`clearn sweep`: a grid of runs, and the frontier of mean accuracy vs capacity it traces."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from clearn.config import RunConfig
from clearn.experiment import run_or_reuse
from clearn.io import write_json_atomic
from clearn.plots import plot_frontier

__all__ = ["run_sweep", "sweep_table"]


def _run_name(options: Mapping[str, Any]) -> str:
    return "_".join(
        f"{key}-{value:g}" if isinstance(value, float) else f"{key}-{value}"
        for key, value in options.items()
    )


def _point(options: Mapping[str, Any], results: Mapping[str, Any]) -> dict[str, Any]:
    used = sum(results["capacity"]) if results.get("capacity") is not None else None
    return {
        **options,
        "acc": results["acc"],
        "capacity_used": used,
        "free_fraction": results.get("free_fraction"),
        "train_seconds": results["train_seconds"],
        "folder": results.get("folder"),
    }


def run_sweep(base: RunConfig, grid: Mapping[str, Sequence[Any]], out: str | Path) -> list[dict]:
    """Run `base` with every combination of `grid` (RunConfig field → values) under `out`.

    Finished runs are read back instead of run again, so an interrupted sweep resumes; a
    half-finished run resumes from its checkpoint. Writes sweep.json, sweep.md, frontier.png.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    keys = list(grid)
    combinations = [
        dict(zip(keys, values, strict=True))
        for values in itertools.product(*(grid[k] for k in keys))
    ]
    points = []
    for options in tqdm(combinations, desc="sweep", unit="run"):
        config = dataclasses.replace(base, **options).validate()
        folder = out / _run_name(options)
        results = run_or_reuse(config, folder)
        points.append(_point(options, {**results, "folder": str(folder)}))
        write_json_atomic(out / "sweep.json", {"base": base.to_dict(), "points": points})
    (out / "sweep.md").write_text(sweep_table(points) + "\n")
    if "gamma" in grid:
        series = [k for k in keys if k != "gamma"]
        plot_frontier(
            points,
            series_keys=series,
            path=out / "frontier.png",
            title=f"{base.scenario}, {base.tasks or 'default'} tasks, {base.epochs} epochs/task",
        )
    return points


def sweep_table(points: Sequence[Mapping[str, Any]]) -> str:
    """Markdown table of a sweep's points: options, ACC, capacity used, free, time."""
    options = [
        k
        for k in points[0]
        if k not in ("acc", "capacity_used", "free_fraction", "train_seconds", "folder")
    ]
    lines = [
        "| " + " | ".join(options) + " | ACC % | capacity used % | free % | train s |",
        "|" + "---|" * (len(options) + 4),
    ]
    for point in points:
        used = point["capacity_used"]
        free = point["free_fraction"]
        lines.append(
            "| "
            + " | ".join(
                f"{point[k]:g}" if isinstance(point[k], float) else str(point[k]) for k in options
            )
            + f" | {100 * point['acc']:.1f} | {'–' if used is None else f'{100 * used:.1f}'} | "
            f"{'–' if free is None else f'{100 * free:.1f}'} | {point['train_seconds']:.0f} |"
        )
    return "\n".join(lines)
