"""Where a packed training step's time goes, layer by layer of clearn, without Avalanche.

Variants, each adding one thing to the one before, on the MLP 784-300-100 with a 10-class head
per task, batch 60, plain SGD, in one process with interleaved rounds:

- bare: the backbone and one head as plain modules (the `speed` benchmark's bare loop);
- PackedNetwork α=1: the same layers behind ownership masks, task 0 frozen (30% of the weights),
  task 1 training on the rest (per-step cost: the task's view, the parametrized weight reads);
- + restore_frozen: task 0's weights written back after each step, as EfficientPackNet does
  under an optimizer with momentum, weight decay or moments;
- + zeroed gradients instead: task 0's gradients zeroed before the step, as EfficientPackNet
  does under plain SGD (the default), where a zero gradient moves nothing;
- + Powerprop (default α, κ): clearn's default network, with zeroed gradients.

The full `clearn run` (Avalanche's loop, validation, search) is in the `speed` benchmark.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from benchmarks.common import (
    interleaved_step_times,
    main,
    mnist_sized_batches,
    save_result,
    sgd_step,
)
from benchmarks.report import write_results_page
from clearn.app.config import RunConfig
from clearn.app.tables import markdown_table
from clearn.defaults import DEFAULT_ALPHA
from clearn.models import mlp
from clearn.network import PackedNetwork
from clearn.packing import TaskPacker


def _bare_step(inputs: Tensor, labels: Tensor) -> Callable[[], None]:
    torch.manual_seed(0)
    model = nn.Sequential(mlp(input_size=784)[:-1], nn.Linear(100, 10))
    return sgd_step(model, model.parameters(), inputs, labels)


def _packed_step(
    inputs: Tensor, labels: Tensor, *, alpha: float, frozen: str | None
) -> Callable[[], None]:
    """A step of task 1; `frozen` keeps task 0's weights by "restore" or by "zero"ing their
    gradients (None: not at all, to time the masked network alone)."""
    torch.manual_seed(0)
    network = PackedNetwork(
        backbone=mlp(input_size=784)[:-1], feature_size=100, classes_per_task=[10, 10],
        alpha=alpha,
    )
    packer = TaskPacker(network)
    packer.begin_task(0)
    packer.prune(0.3)
    packer.end_task()
    packer.begin_task(1)
    task_labels = torch.ones(60, dtype=torch.long)  # as Avalanche passes them: one per example
    return sgd_step(
        lambda x: network(x, task_labels),
        network.parameters(),
        inputs,
        labels,
        before_step=packer.zero_frozen_gradients if frozen == "zero" else None,
        after_step=(
            None if frozen is None
            else lambda: packer.restore_frozen(parameters=frozen == "restore")
        ),
    )


def run(*, quick: bool = False) -> dict:
    """Measure and print each variant's step time and its ratio to the bare step."""
    began = time.perf_counter()
    inputs, labels = mnist_sized_batches()
    steps = {
        "bare": _bare_step(inputs, labels),
        "PackedNetwork α=1": _packed_step(inputs, labels, alpha=1.0, frozen=None),
        "+ restore_frozen": _packed_step(inputs, labels, alpha=1.0, frozen="restore"),
        "+ zeroed gradients instead": _packed_step(inputs, labels, alpha=1.0, frozen="zero"),
        f"+ Powerprop α={DEFAULT_ALPHA:g}": _packed_step(
            inputs, labels, alpha=DEFAULT_ALPHA, frozen="zero"
        ),
    }
    calls, rounds = (100, 3) if quick else (300, 7)
    times = interleaved_step_times(steps, reference="bare", calls=calls, rounds=rounds)
    summary = "Packed training step, MLP 784-300-100 + head, batch 60, SGD, task 1 of 2"
    header = ["variant", "ms/step", "vs bare", f"spread, {rounds} rounds"]
    table = markdown_table(header, times.rows())
    print(summary, table, sep="\n")
    result = {"seconds_per_step": times.seconds, "ratios": times.ratios}
    save_result("step_breakdown", result)
    write_results_page(
        "step_breakdown-quick" if quick else "step_breakdown",
        title="Where a packed training step's time goes "
              "(`python -m benchmarks --only step_breakdown`)",
        body=f"{summary}.\n\n{table}\n",
        command="python -m benchmarks --only step_breakdown" + (" --quick" if quick else ""),
        seconds=time.perf_counter() - began,
        configs={"step timing": {
            "model": "mlp", "hidden": [300, 100], "batch_size": 60, "optimizer": "sgd", "lr": 0.1,
            "task 0 keeps": 0.3, "calls": calls, "rounds": rounds}},
        defaults=RunConfig().to_dict(),
    )  # fmt: skip
    return result


if __name__ == "__main__":
    main(run, __doc__)
