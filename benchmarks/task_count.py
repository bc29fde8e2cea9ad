"""A packed training step as the network's tasks grow: the per-step cost should not grow with
the number of heads (issue 24: time per task flat over a 1,000-task stream).

The MLP of the long streams (64 inputs, 300-100, a 10-class head per task), batch 60, plain
SGD, driven as `EfficientPackNet` drives it: `TaskPacker` freezes, and the optimizer leaves out
the parameters the task holds frozen (`OptimizerScope`, as the packing plugin does). Task 0
keeps what it trained, then `earlier` tasks are taken as trained (their heads exist and are
frozen) and the next task trains:

- with free weights: task 0 kept 30% of each layer, the next task trains the rest;
- head only: task 0 kept every weight, the next task trains its head on frozen features
  (most tasks of a long stream, once the network is full);
- head only, the optimizer over every parameter: as a plain template with an optimizer of its
  own would step, every earlier task's head visited by `step` and `zero_grad` (what the
  packing plugin's `OptimizerScope` saves).

Each row is compared with the same step after one earlier task, in one process, with
interleaved rounds.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from benchmarks.common import interleaved_step_times, main, save_result, sgd_step
from benchmarks.report import write_results_page
from clearn.app.config import RunConfig
from clearn.app.tables import markdown_table
from clearn.defaults import DEFAULT_ALPHA
from clearn.frozen import OptimizerScope
from clearn.models import mlp
from clearn.network import PackedNetwork
from clearn.packing import TaskPacker

EARLIER_TASKS = (1, 100, 1000)
INPUTS = 64
TARGET = 1.10
"""Most a step after 1,000 tasks may take, as a multiple of the same step after one."""


KINDS = {
    "with free weights": {"head_only": False, "scoped": True},
    "head only": {"head_only": True, "scoped": True},
    "head only, optimizer over every parameter": {"head_only": True, "scoped": False},
}


def _step(earlier: int, *, head_only: bool, scoped: bool) -> Callable[[], None]:
    """One SGD step of the task that follows `earlier` trained tasks; `scoped`: the optimizer
    leaves out what the task holds frozen."""
    torch.manual_seed(0)
    network = PackedNetwork(
        backbone=mlp(input_size=INPUTS)[:-1], feature_size=100,
        classes_per_task=[10] * (earlier + 1), alpha=DEFAULT_ALPHA,
    )  # fmt: skip
    packer = TaskPacker(network)
    packer.begin_task(0)
    packer.prune(1.0 if head_only else 0.3)
    packer.end_task()
    network.trained_tasks = earlier  # tasks 1..earlier-1 own nothing: only their heads count
    packer.begin_task(earlier, allow_frozen_features=True)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1)
    if scoped:
        OptimizerScope().narrow(optimizer, packer.held_parameters)
    generator = torch.Generator().manual_seed(0)
    inputs = torch.rand(6000, INPUTS, generator=generator)
    labels = torch.randint(0, 10, (6000,), generator=generator)
    network.train()
    return sgd_step(
        lambda x: network(x, earlier), optimizer.param_groups[0]["params"], inputs, labels,
        # sgd_step makes its own SGD over the parameters that `optimizer` steps
        before_step=packer.zero_frozen_gradients,
        after_step=lambda: packer.restore_frozen(parameters=False),
    )  # fmt: skip


def run(*, quick: bool = False) -> dict:
    """Measure and print each step's time and its ratio to the step after one task."""
    began = time.perf_counter()
    calls, rounds = (100, 3) if quick else (300, 7)
    figures, rows = {}, []
    for kind, options in KINDS.items():
        steps = {n: _step(n, **options) for n in EARLIER_TASKS}
        times = interleaved_step_times(steps, reference=1, calls=calls, rounds=rounds)
        figures[kind] = {"seconds_per_step": {str(n): s for n, s in times.seconds.items()},
                         "ratios": {str(n): r for n, r in times.ratios.items()}}  # fmt: skip
        for n in EARLIER_TASKS:
            ratios = times.ratios[n]
            rows.append([kind, f"{n:,}", f"{1000 * times.seconds[n]:.3f}",
                         f"{statistics.median(ratios):.2f}",
                         f"{min(ratios):.2f}–{max(ratios):.2f}"])  # fmt: skip
    worst = max(statistics.median(figures[kind]["ratios"][str(EARLIER_TASKS[-1])])
                for kind, options in KINDS.items() if options["scoped"])  # fmt: skip
    verdict = "met" if worst <= TARGET else "NOT met"
    summary = (f"Packed training step after N trained tasks, MLP {INPUTS}-300-100 + a head per "
               f"task, batch 60, SGD, α = {DEFAULT_ALPHA:g}, as EfficientPackNet drives it")
    header = ["task trains", "earlier tasks", "ms/step", "vs 1 earlier task",
              f"spread, {rounds} rounds"]  # fmt: skip
    table = markdown_table(header, rows)
    target = (f"target, as EfficientPackNet steps: after 1,000 tasks <= {TARGET:.2f}× the "
              f"step after one: {worst:.2f} ({verdict})")
    print(summary, table, target, sep="\n")
    result = {**figures, "worst_ratio": worst}
    save_result("task_count", result)
    write_results_page(
        "task_count-quick" if quick else "task_count",
        title="A training step as the tasks grow (`python -m benchmarks --only task_count`)",
        body=f"{summary}.\n\n{table}\n\n{target}\n",
        command="python -m benchmarks --only task_count" + (" --quick" if quick else ""),
        seconds=time.perf_counter() - began,
        configs={"step timing": {
            "model": "mlp", "inputs": INPUTS, "hidden": [300, 100], "batch_size": 60,
            "optimizer": "sgd", "lr": 0.1, "earlier tasks": list(EARLIER_TASKS),
            "calls": calls, "rounds": rounds}},
        defaults=RunConfig().to_dict(),
    )  # fmt: skip
    return result


if __name__ == "__main__":
    main(run, __doc__)
