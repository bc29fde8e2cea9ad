"""Task-agnostic inference: how often the task of an unlabelled example (or batch) is found,
what accuracy is left, and what it costs, next to task-aware accuracy.

Trains the default `epn` on permuted Fashion-MNIST (10 tasks) and split Fashion-MNIST (5
tasks) — the digits with --quick — then answers each task's test set without task labels:
per example (lowest normalised entropy among the trained tasks' heads), and per batch of 16
and 128 examples known to share a task. Cost: one task-agnostic answer of a batch of 128 vs
one task-aware forward pass of it. Per example, two ways: the lowest entropy, and the
likeliest task under each task's diagonal Gaussian of its training inputs. Per batch, three:
the summed entropies of every task's view, SupSup's one-shot gradient of the entropy of all
views superposed, and the inputs' summed log-likelihoods.
"""

from __future__ import annotations

import time

import torch

from benchmarks.common import RESULTS_DIR, main, median_seconds, run_all, save_result
from benchmarks.report import write_results_page
from benchmarks.task_inference import trained_network
from clearn.app.config import RunConfig
from clearn.app.tables import markdown_table, percent
from clearn.network import PackedNetwork
from clearn.task_inference import infer_task, task_agnostic_logits
from scenarios.datasets import DEBIAN_FASHION_MNIST

BATCHES = (16, 128)
EXAMPLE_METHODS = ("example", "inputs")
"""Per example: lowest entropy, or likeliest inputs."""
METHODS = ("batch", "one-shot", "inputs-batch")
"""Batch-level inference: summed entropies of every task's view, SupSup's one-shot, or the
inputs' summed log-likelihoods."""


@torch.no_grad()
def _scores(network: PackedNetwork, inputs: torch.Tensor, labels: torch.Tensor, task: int,
            batch: int | None, method: str) -> tuple[float, float, float]:
    """Task-aware accuracy, task-id accuracy and task-agnostic accuracy on one task's data;
    `batch` None decides per example, else per batch of that size from this task."""
    aware = float((network(inputs, task).argmax(1) == labels).float().mean())
    found = right = 0
    size = len(labels) if batch is None else batch
    for start in range(0, len(labels), size):
        part, part_labels = inputs[start : start + size], labels[start : start + size]
        guess = infer_task(network, part, method=method)
        hit = guess.tasks == task
        found += int(hit.sum())
        right += int((hit & (task_agnostic_logits(guess).argmax(1) == part_labels)).sum())
    return aware, found / len(labels), right / len(labels)


def _study(network: PackedNetwork, stream) -> dict:
    rows = {}
    settings = [(method, None, method) for method in EXAMPLE_METHODS]
    settings += [(f"{method} {size}", size, method) for method in METHODS for size in BATCHES]
    for name, batch, method in settings:
        per_task = []
        for task in range(stream.n_tasks):
            split = stream.test[task]
            inputs = split.inputs(torch.arange(len(split)))
            per_task.append(_scores(network, inputs, split.labels, task, batch, method))
        rows[name] = {
            key: sum(s[i] for s in per_task) / len(per_task)
            for i, key in enumerate(("task_aware_acc", "task_id_acc", "task_agnostic_acc"))
        }
    split = stream.test[0]
    inputs = split.inputs(torch.arange(min(128, len(split))))
    aware = median_seconds(lambda: network(inputs, 0), repeats=5, calls=5)
    for method in (*EXAMPLE_METHODS, *METHODS):
        spent = median_seconds(
            lambda m=method: infer_task(network, inputs, method=m), repeats=5, calls=5
        )
        rows[f"cost_ratio_{method}_128"] = spent / aware
    return rows


def run(*, quick: bool = False) -> dict:
    """Train (or reuse) both streams' runs, then measure; print one table."""
    began = time.perf_counter()
    fmnist = DEBIAN_FASHION_MNIST.is_dir() and not quick
    dataset = "fmnist" if fmnist else "digits"
    streams = {f"permuted-{dataset}": 3 if quick else 10, f"split-{dataset}": None}
    runs = {
        scenario: (
            RunConfig(scenario=scenario, tasks=tasks, **({"epochs": 3} if quick else {})),
            RESULTS_DIR / "runs" / "task-agnostic" / scenario,
        )
        for scenario, tasks in streams.items()
    }
    run_all(runs)
    print(f"trained in {time.perf_counter() - began:.0f} s")
    figures, body = {}, []
    for scenario, (config, folder) in runs.items():
        network, stream = trained_network(config, folder)
        figures[scenario] = found = _study(network, stream)
        aware = found["example"]["task_aware_acc"]
        settings = [*EXAMPLE_METHODS, *(f"{m} {b}" for m in METHODS for b in BATCHES)]
        body.append(
            [scenario, stream.n_tasks, percent(aware)]
            + [
                f"{percent(found[k]['task_id_acc'])} / {percent(found[k]['task_agnostic_acc'])}"
                for k in settings
            ]
            + [
                f"{max(found[f'{m} 16']['task_agnostic_acc'] for m in METHODS) - aware:+.3f}"
            ]
            + [f"{found[f'cost_ratio_{m}_128']:.1f}" for m in (*EXAMPLE_METHODS, *METHODS)]
        )
    header = [
        "stream", "tasks", "task-aware ACC %",
        *(f"{m} (per example): task-id % / ACC %" for m in EXAMPLE_METHODS),
        *(f"{m} {b}" for m in METHODS for b in BATCHES),
        "best batch-16 ACC − task-aware (target ≥ −0.010)",
        *(f"{m}: cost vs task-aware pass" for m in (*EXAMPLE_METHODS, *METHODS)),
    ]
    table = markdown_table(header, body)
    print(table)
    save_result("task_agnostic", figures)
    write_results_page(
        "task_agnostic-quick" if quick else "task_agnostic",
        title="Task-agnostic inference: finding an example's task "
              "(`python -m benchmarks --only task_agnostic`)",
        body=f"{table}\n",
        command="python -m benchmarks --only task_agnostic" + (" --quick" if quick else ""),
        seconds=time.perf_counter() - began,
        configs={scenario: config.to_dict() for scenario, (config, _) in runs.items()},
        defaults=RunConfig().to_dict(),
    )  # fmt: skip
    return figures


if __name__ == "__main__":
    main(run, __doc__)
