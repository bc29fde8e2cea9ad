"""Long streams: 1,000 permuted tasks in one network, today's default against α = 1, classic
PackNet and the default under a task budget, with two reference rows any capacity claim
must beat.

Streams: permuted 8×8 digits (64 inputs) and permuted Fashion-MNIST with 100 training images
a class (784 inputs; digits in its place where the Debian files are absent). Each task is a
new permutation of the same images; the MLP is `clearn run`'s default (300-100).

Reference rows:
- frozen features: classic PackNet keeping every weight the first task trained
  (`prune_fraction` 0), so that every later task trains only its head on the first task's
  features (`allow_frozen_features`);
- one network per task (the upper bound): a fresh dense network trained on one task, for
  `UPPER_BOUND_SEEDS` seeds. A fresh MLP learns any permutation of its inputs as it learns
  the unpermuted task (its first layer is permutation-equivariant), so a seed's first task
  samples the accuracy a network of its own would give any task of the stream.

Under the default's layer-wise pruning every task keeps the same share of each layer; the
global-scope row shows where a task's kept weights go when magnitude alone decides, and so
how much of them a permuted task spends outside its first layer.

Figures: average accuracy, free capacity and (for the default) task-id accuracy against
tasks seen, plotted (task-id accuracy on a sample of each task's test set where
`TASK_ID_EXAMPLES` says so); train seconds per task over the first and last tenth of the stream;
checkpoint size at the end. Every option not named is `clearn run`'s default; a task that
finds no free weight left trains its head on frozen features instead of stopping.
`python -m benchmarks.long_stream --tasks N` runs a shorter stream (its own results file);
`--streams` and `--methods` run some of them (results file, page and plots named after the
streams and methods run, so that they never replace the whole benchmark's);
finished runs are reused and interrupted ones resume from their checkpoints. `--so-far`
reads interrupted runs up to their last checkpoints instead, running only the references
(results file and page named `…_so_far`): a stream that takes hours can be reported as it
goes.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import RESULTS_DIR, run_all, save_result
from benchmarks.report import write_results_page
from clearn.app.checkpoint import load_checkpoint
from clearn.app.config import RunConfig
from clearn.app.plots import plot_average_accuracy, plot_free_capacity
from clearn.app.results import RunResult
from clearn.app.run import CHECKPOINT
from clearn.app.tables import markdown_table, percent
from scenarios.datasets import DEBIAN_FASHION_MNIST
from strategies import PackingPlugin

TASKS = 1000
QUICK_TASKS = 10
UPPER_BOUND_SEEDS = (0, 1, 2)
STREAMS: dict[str, dict[str, Any]] = {
    "permuted-digits": {},
    "permuted-fmnist": {"train_per_class": 100},
}
METHODS: dict[str, dict[str, Any]] = {
    "default": {"task_agnostic": True},
    "α = 1": {"alpha": 1.0},
    "classic PackNet": {"strategy": "packnet"},
    "default, task budget": {},  # task_budget: the stream's length, set per run
    "default, global scope": {"scope": "global"},  # where the search keeps, left free
    "frozen features (reference)": {"strategy": "packnet", "prune_fraction": 0.0},
}
TASK_ID_EXAMPLES: dict[tuple[str, int], int] = {("permuted-fmnist", TASKS): 500}
"""Test examples per task that the task-agnostic evaluation answers (a seeded sample,
`task_agnostic_examples`), by (stream, length), where answering all of them would take hours:
0.5 to 3 ms an example against 1,000 tasks of 784 inputs on one thread (by input model and
machine: docs/results/task_inference.md), for 10,000 images a task at every full
evaluation. Elsewhere every test example is answered."""
PACKING = PackingPlugin.__name__
"""The plugin whose state in a checkpoint holds the task reports."""
SO_FAR_NOTE = (
    "The long runs were interrupted: each row holds what its run measured up to its last "
    "checkpoint, the number of tasks it had trained given with its method. ACC % there is "
    "the mean accuracy of the tasks trained so far, each measured right after it trained "
    "(packing forgets nothing; the last column checks it on every full evaluation); the "
    "plot's points are the full evaluations so far. The runs resume from their checkpoints "
    "with the same command without --so-far."
)
HEADER = [
    "stream", "method", "ACC %", "ACC % after 10 tasks", "free % at end", "task-id % (end)",
    "kept in layer 1 %", "train s/task, first 10%", "last 10%", "checkpoint MB",
    "largest accuracy drift since trained, points",
]  # fmt: skip


def _configs(scenario: str, tasks: int, methods: list[str]) -> dict[tuple[str, str], RunConfig]:
    common = dict(scenario=scenario, tasks=tasks, allow_frozen_features=True,
                  eval_every_tasks=max(1, tasks // 10), **STREAMS[scenario])  # fmt: skip
    overrides_by_method = {"default, task budget": {"task_budget": tasks}}
    if (scenario, tasks) in TASK_ID_EXAMPLES:
        sample = TASK_ID_EXAMPLES[(scenario, tasks)]
        overrides_by_method["default"] = {"task_agnostic_examples": sample}
    configs = {
        (scenario, method): RunConfig(
            **common, **METHODS[method], **overrides_by_method.get(method, {})
        )
        for method in methods
    }  # fmt: skip
    for seed in UPPER_BOUND_SEEDS:
        configs[(scenario, f"one network per task, seed {seed}")] = RunConfig(
            **{**common, "tasks": 1, "allow_frozen_features": False}, strategy="naive", seed=seed
        )
    return configs


@dataclass(frozen=True)
class _Measured:
    """What a long run measured: a finished run's, or an interrupted one's so far (read from
    its checkpoint)."""

    acc: float
    """ACC: a finished run's; so far, the mean accuracy of the tasks trained."""
    matrix: list[list[float | None]]
    task_id_matrix: list[list[float | None]] | None
    task_reports: list[dict[str, Any]]
    train_seconds_per_task: list[float]

    @classmethod
    def of_result(cls, result: RunResult) -> _Measured:
        return cls(result.acc, result.accuracy_matrix, result.task_id_matrix,
                   result.task_reports, result.train_seconds_per_task)  # fmt: skip

    @classmethod
    def so_far(cls, folder: Path) -> _Measured:
        """An interrupted run's measurements up to its last checkpoint."""
        saved = load_checkpoint(folder / CHECKPOINT)
        packing = [p["state"] for p in saved["strategy"]["plugins"] if p["type"] == PACKING]
        agnostic = saved["task_agnostic"]
        matrix = saved["matrix"]
        return cls(_mean_accuracy_after(matrix, len(matrix)), matrix,
                   agnostic["task_id"] if saved["config"]["task_agnostic"] else None,
                   packing[0]["reports"] if packing else [], saved["train_seconds"])  # fmt: skip


def _mean_accuracy_after(matrix: list[list[float | None]], tasks: int) -> float | None:
    """Mean accuracy over the first `tasks` tasks once they are trained. Every method here
    packs, and packing forgets nothing, so a task's accuracy is the one measured right after
    it trained (the matrix's diagonal; between full evaluations a row holds only that task);
    `_largest_drift` checks that on every full evaluation. None for a shorter stream."""
    if len(matrix) < tasks:
        return None
    return statistics.fmean(row[i] for i, row in enumerate(matrix[:tasks]))


def _largest_drift(matrix: list[list[float | None]]) -> float:
    """The largest change of a task's accuracy since it trained, over the full evaluations."""
    diagonal = [row[i] for i, row in enumerate(matrix)]
    return max(
        (abs(v - diagonal[j]) for row in matrix for j, v in enumerate(row) if v is not None),
        default=0.0,
    )


def _last_full_row(matrix: list[list[float | None]]) -> list[float]:
    """The values of the last row that evaluated every task seen ([] without one)."""
    full = [row[: i + 1] for i, row in enumerate(matrix) if None not in row[: i + 1]]
    return full[-1] if full else []


def _first_layer_share(folder: Path) -> float | None:
    """Mean over the tasks that own weights of the share of them in the first masked layer
    (a permuted task differs from the first only in its inputs' order: what it keeps beyond
    the first layer is what it did not reuse)."""
    model = load_checkpoint(folder / CHECKPOINT)["model"]
    owners = [v.flatten().long() for k, v in model.items() if k.endswith(".owner")]
    codes = max(int(o.max()) for o in owners) + 1
    counts = torch.stack([torch.bincount(o, minlength=codes) for o in owners])[:, 1:]  # 0: free
    owned = counts.sum(0)
    shares = (counts[0][owned > 0] / owned[owned > 0]).tolist()
    return statistics.fmean(shares) if shares else None


def _tenth(seconds: list[float], *, last: bool) -> float:
    count = max(1, len(seconds) // 10)
    return statistics.fmean(seconds[-count:] if last else seconds[:count])


def _figures(measured: _Measured, folder: Path) -> dict[str, Any]:
    reports = measured.task_reports
    task_id = _last_full_row(measured.task_id_matrix or [])
    return {
        "acc": measured.acc,
        "tasks_trained": len(measured.matrix),
        "acc_after_10": _mean_accuracy_after(measured.matrix, 10),
        "largest_drift": _largest_drift(measured.matrix),
        "free": [r["free_fraction"] for r in reports],
        "task_id_end": statistics.fmean(task_id) if task_id else None,
        "task_id_tasks": len(task_id),
        "budget_bound_tasks": sum(bool(r.get("budget_bound")) for r in reports),
        "train_seconds_per_task": measured.train_seconds_per_task,
        "checkpoint_bytes": (folder / CHECKPOINT).stat().st_size,
        "kept_in_first_layer": _first_layer_share(folder),
    }


def _task_id_cell(f: dict[str, Any]) -> str:
    """Task-id accuracy at the last full evaluation, saying how many tasks it covered where
    later tasks trained after it (an interrupted run between full evaluations)."""
    cell = percent(f["task_id_end"])
    if f["task_id_end"] is not None and f["task_id_tasks"] < f["tasks_trained"]:
        cell += f" (of {f['task_id_tasks']} tasks)"
    return cell


def _row(scenario: str, method: str, f: dict[str, Any]) -> list[str]:
    seconds = f["train_seconds_per_task"]
    return [
        scenario, method, percent(f["acc"]), percent(f["acc_after_10"]),
        percent(f["free"][-1]) if f["free"] else "–", _task_id_cell(f),
        percent(f["kept_in_first_layer"]),
        f"{_tenth(seconds, last=False):.1f}", f"{_tenth(seconds, last=True):.1f}",
        f"{f['checkpoint_bytes'] / 2**20:.1f}", f"{100 * f['largest_drift']:.1f}",
    ]  # fmt: skip


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower().replace("α", "alpha")).strip("-")


def _name_and_command(
    tasks: int, streams: list[str] | None, methods: list[str]
) -> tuple[str, str]:
    """The results name of a run of `streams` (None: all) and `methods`, and its command."""
    name = "long_stream" if tasks == TASKS else f"long_stream_{tasks}"
    command = f"python -m benchmarks.long_stream --tasks {tasks}"
    if streams:
        name += "_" + "_".join(streams)
        command += " --streams " + " ".join(streams)
    if methods != list(METHODS):
        name += "_" + "_".join(map(_slug, methods))
        command += " --methods " + " ".join(f"'{m}'" for m in methods)
    return name, command


def run(
    *,
    quick: bool = False,
    tasks: int | None = None,
    streams: list[str] | None = None,
    methods: list[str] | None = None,
    so_far: bool = False,
) -> dict:
    """Run the streams' methods (every one by default; reusing finished runs), print, plot;
    return the figures. With `so_far`, read the long runs as far as their checkpoints go
    instead of running them (the references still run)."""
    began = time.perf_counter()
    tasks = tasks or (QUICK_TASKS if quick else TASKS)
    fmnist = DEBIAN_FASHION_MNIST.is_dir() and not quick
    scenarios = [s for s in streams or STREAMS if fmnist or s != "permuted-fmnist"]
    methods = methods or list(METHODS)
    configs = {key: c for s in scenarios for key, c in _configs(s, tasks, methods).items()}
    name, command = _name_and_command(tasks, streams and scenarios, methods)
    folders = {key: RESULTS_DIR / "runs" / f"long-{tasks}" / "-".join(key).replace(" ", "_")
               for key in configs}  # fmt: skip
    long_runs = [(s, m) for s in scenarios for m in methods]
    finished = run_all({key: (configs[key], folders[key]) for key in configs
                        if not (so_far and key in long_runs)})  # fmt: skip
    measured = {key: _Measured.so_far(folders[key]) if so_far
                else _Measured.of_result(finished[key]) for key in long_runs}  # fmt: skip
    if so_far:
        name, command = f"{name}_so_far", f"{command} --so-far"
    figures: dict[str, dict[str, Any]] = {}
    rows = []
    for scenario in scenarios:
        figures[scenario] = {}
        upper = [finished[(scenario, f"one network per task, seed {s}")].acc
                 for s in UPPER_BOUND_SEEDS]  # fmt: skip
        for method in methods:
            f = _figures(measured[(scenario, method)], folders[(scenario, method)])
            figures[scenario][method] = f
            label = f"{method} ({f['tasks_trained']} tasks so far)" if so_far else method
            rows.append(_row(scenario, label, f))
        figures[scenario]["one network per task"] = {"acc": statistics.fmean(upper),
                                                     "accs": upper}  # fmt: skip
        rows.append([scenario, f"one network per task ({len(upper)} seeds)",
                     percent(statistics.fmean(upper))] + ["–"] * (len(HEADER) - 3))  # fmt: skip
        stem = f"{name}_{scenario}"
        plot_average_accuracy(
            {m: measured[(scenario, m)].matrix for m in methods},
            RESULTS_DIR / f"{stem}_accuracy.png",
        )
        plot_free_capacity(
            {m: figures[scenario][m]["free"] for m in methods}, RESULTS_DIR / f"{stem}_free.png"
        )
    table = markdown_table(HEADER, rows)
    print(table)
    save_result(name, {"tasks": tasks, "streams": figures, "so_far": so_far})
    plots = "\n".join(
        f"![{s}: {kind}](../../benchmarks/results/{name}_{s}_{kind}.png)"
        for s in scenarios for kind in ("accuracy", "free")
    )  # fmt: skip
    note = SO_FAR_NOTE + "\n\n" if so_far else ""
    write_results_page(
        name if not quick else f"{name}-quick",
        title=f"{tasks} permuted tasks in one network (`{command}`)",
        body=f"{note}{table}\n\n{plots}\n",
        command=command,
        seconds=time.perf_counter() - began,
        configs={" · ".join(key): config.to_dict() for key, config in configs.items()},
        defaults=RunConfig().to_dict(),
        benchmark="long_stream",
    )  # fmt: skip
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_TASKS} tasks, digits only")
    parser.add_argument("--tasks", type=int, default=None, help=f"stream length ({TASKS})")
    parser.add_argument("--streams", nargs="+", choices=list(STREAMS), help="(all)")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), help="(all)")
    parser.add_argument(
        "--so-far", action="store_true", help="read the long runs to their last checkpoints"
    )
    arguments = parser.parse_args()
    run(quick=arguments.quick, tasks=arguments.tasks, streams=arguments.streams,
        methods=arguments.methods, so_far=arguments.so_far)  # fmt: skip
