"""`clearn sweep`: a grid of runs, and the frontier of mean accuracy vs capacity it traces."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import re
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from clearn.app.config import RunConfig
from clearn.app.executors import RunFailure, RunJob, run_jobs
from clearn.app.experiment import check_reusable
from clearn.app.io import write_json_atomic, write_text_atomic
from clearn.app.plots import plot_frontier
from clearn.app.results import RunResult
from clearn.app.tables import markdown_table, number, percent

__all__ = ["RESULT_KEYS", "SweepFailedError", "run_sweep", "seed_means", "sweep_table"]


class SweepFailedError(RuntimeError):
    """Some runs of a sweep failed; the others finished and are kept."""


RESULT_KEYS = ("acc", "capacity_used", "free_fraction", "train_seconds", "folder")
"""Keys of a sweep point that hold results; every other key is a run option."""


_UNSAFE = re.compile(r"[^A-Za-z0-9._+=-]")
"""Characters a run folder's name never holds (a path separator among them)."""
_NAME_LIMIT = 120


def _run_name(options: Mapping[str, Any]) -> str:
    """The folder name of one grid point: `key-value` pairs, always one plain path component.
    A value with other characters, or a long name, gets a digest of the options, so that
    different points never share a folder."""
    name = "_".join(
        f"{key}-{value:g}" if isinstance(value, float) else f"{key}-{value}"
        for key, value in options.items()
    )
    safe = _UNSAFE.sub("+", name)
    if safe == name and len(name) <= _NAME_LIMIT:
        return name
    digest = hashlib.sha256(repr(list(options.items())).encode()).hexdigest()[:12]
    return f"{safe[:_NAME_LIMIT]}_{digest}"


def _check_grid(combinations: list[dict[str, Any]], jobs: list[RunJob], out: Path) -> None:
    """Refuse a grid holding one run twice, or a folder that would not be right under `out`."""
    folders: dict[str, dict[str, Any]] = {}
    configs: dict[str, dict[str, Any]] = {}
    for options, job in zip(combinations, jobs, strict=True):
        if job.folder.resolve().parent != out.resolve():
            raise ValueError(f"grid point {_shown(options)} would run outside --out {out}")
        config = repr(sorted(job.config.to_dict().items()))
        earlier = folders.get(job.folder.name) or configs.get(config)
        if earlier is not None:
            raise ValueError(
                f"the grid holds the same run twice ({_shown(earlier)} and {_shown(options)}); "
                f"list each value once"
            )
        folders[job.folder.name] = configs[config] = options


def _shown(options: Mapping[str, Any], limit: int = 80) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in options.items())
    return text if len(text) <= limit else text[:limit] + "…"


def _point(options: Mapping[str, Any], results: RunResult, folder: Path) -> dict[str, Any]:
    return {
        **options,
        "acc": results.acc,
        "capacity_used": results.capacity_used,
        "free_fraction": results.free_fraction,
        "train_seconds": results.train_seconds,
        "folder": str(folder),
    }


def run_sweep(
    base: RunConfig,
    grid: Mapping[str, Sequence[Any]],
    out: str | Path,
    *,
    executor: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
) -> tuple[list[dict], list[dict]]:
    """Run `base` with every combination of `grid` (RunConfig field → values) under `out`.

    Finished runs are read back instead of run again, so an interrupted sweep resumes; a
    half-finished run resumes from its checkpoint. `executor` "local" runs them in `workers`
    processes here, "ray" as Ray tasks (`executors`), each with one torch thread. A run that
    fails is reported and the others go on. Writes sweep.json (points in grid order, and the
    failures), sweep.md, frontier.png; returns the points and the failures.
    """
    out = Path(out)
    keys = list(grid)
    combinations = [
        dict(zip(keys, values, strict=True))
        for values in itertools.product(*(grid[k] for k in keys))
    ]
    # Every setting, and every folder a run would reuse, checked before the first run
    # starts: a bad value or a folder holding a run with other options fails at once.
    configs = [dataclasses.replace(base, **options).validate() for options in combinations]
    jobs = [
        RunJob(config, out / _run_name(options))
        for options, config in zip(combinations, configs, strict=True)
    ]
    _check_grid(combinations, jobs, out)
    for job in jobs:
        check_reusable(job.config, job.folder)
    outcomes = run_jobs(jobs, executor=executor, workers=workers, ray_address=ray_address)
    out.mkdir(parents=True, exist_ok=True)
    finished: dict[int, dict[str, Any]] = {}
    failed: dict[int, dict[str, Any]] = {}
    for index, outcome in tqdm(outcomes, total=len(jobs), desc="sweep", unit="run"):
        options, folder = combinations[index], jobs[index].folder
        if isinstance(outcome, RunFailure):
            failed[index] = {**options, "folder": str(folder), "error": outcome.error}
            tqdm.write(f"run {folder.name} failed: {outcome.error}")
        else:
            finished[index] = _point(options, outcome, folder)
        content = {
            "base": base.to_dict(),
            "points": [finished[i] for i in sorted(finished)],
            "failed": [failed[i] for i in sorted(failed)],
        }
        write_json_atomic(out / "sweep.json", content)
    points = content["points"]
    if points:
        shown = seed_means(points) if "seed" in grid else points
        write_text_atomic(out / "sweep.md", sweep_table(shown) + "\n")
        if "gamma" in grid:
            series = [k for k in keys if k not in ("gamma", "seed")]
            plot_frontier(
                shown,
                series_keys=series,
                path=out / "frontier.png",
                title=f"{base.scenario}, {base.tasks or 'default'} tasks, "
                f"{base.epochs} epochs/task",
            )
    return points, content["failed"]


def _spread(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def seed_means(points: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One point per setting: mean and std over its seeds of ACC and capacity used."""
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for point in points:
        setting = tuple((k, v) for k, v in point.items() if k not in RESULT_KEYS and k != "seed")
        groups.setdefault(setting, []).append(point)
    means = []
    for setting, group in groups.items():
        accuracies = [p["acc"] for p in group]
        used = [p["capacity_used"] for p in group if p["capacity_used"] is not None]
        free = [p["free_fraction"] for p in group if p["free_fraction"] is not None]
        means.append(
            {
                **dict(setting),
                "seeds": len(group),
                "acc": statistics.fmean(accuracies),
                "acc_std": _spread(accuracies),
                "capacity_used": statistics.fmean(used) if used else None,
                "capacity_std": _spread(used) if used else None,
                "free_fraction": statistics.fmean(free) if free else None,
                "train_seconds": statistics.fmean(p["train_seconds"] for p in group),
            }
        )
    return means


def sweep_table(points: Sequence[Mapping[str, Any]]) -> str:
    """Markdown table of a sweep's points (or of their `seed_means`): options, ACC, capacity
    used, free, time; means over seeds come with ± one standard deviation."""
    options = [
        k for k in points[0] if k not in RESULT_KEYS and k not in ("acc_std", "capacity_std")
    ]
    header = [*options, "ACC %", "capacity used %", "free %", "train s"]
    rows = [
        [
            *(f"{p[k]:g}" if isinstance(p[k], float) else p[k] for k in options),
            percent(p["acc"], p.get("acc_std")),
            percent(p["capacity_used"], p.get("capacity_std")),
            percent(p["free_fraction"]),
            number(p["train_seconds"], 0),
        ]
        for p in points
    ]
    return markdown_table(header, rows)
