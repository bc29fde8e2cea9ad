"""Speed, as ratios in one run on one machine:

- `clearn run` (epn) training time vs a bare PyTorch loop over the same network, batches and
  epochs (target ≤ 1.3);
- time per experience vs Avalanche's PackNet as users run it (its own loader; target ≤ 0.5);
- evaluating the whole test stream in mixed-task batches vs a dense network (target ≥ 0.8×).
"""

from __future__ import annotations

import statistics
import tempfile
import time

import torch
from torch import nn

from benchmarks.common import main, save_result
from benchmarks.packing_vs_avalanche import avalanche_packnet
from clearn.app.config import RunConfig
from clearn.app.experiment import run_experiment
from clearn.app.tables import markdown_table
from clearn.models import mlp
from clearn.network import TaskNetwork
from scenarios.datasets import DEBIAN_FASHION_MNIST
from scenarios.streams import build_stream
from scenarios.tasks import TensorBatchLoader

BATCH, LR = 60, 0.1
PASSES = 5


def _bare_loop_seconds(stream, epochs: int) -> float:
    """The floor: plain MLP with per-task heads, plain SGD, the same tensor batches."""
    torch.manual_seed(0)
    inputs = int(torch.tensor(stream.input_shape).prod())
    backbone = mlp(input_size=inputs)[:-1]
    heads = nn.ModuleList(nn.Linear(100, c) for c in stream.classes_per_task)
    start = time.perf_counter()
    for task, split in enumerate(stream.train):
        parameters = list(backbone.parameters()) + list(heads[task].parameters())
        optimizer = torch.optim.SGD(parameters, lr=LR)
        for _ in range(epochs):
            for x, y, _ in TensorBatchLoader(split, batch_size=BATCH, shuffle=True):
                loss = nn.functional.cross_entropy(heads[task](backbone(x)), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    return time.perf_counter() - start


def _packed_network(stream) -> TaskNetwork:
    """A network whose tasks each own a random 10% of what was free: the eval cost of a
    packed network does not depend on which weights a task owns."""
    torch.manual_seed(0)
    inputs = int(torch.tensor(stream.input_shape).prod())
    network = TaskNetwork(
        backbone=mlp(input_size=inputs)[:-1],
        feature_size=100,
        classes_per_task=stream.classes_per_task,
        alpha=2.0,
    )
    for task in range(stream.n_tasks):
        for mask in network.masks.values():
            mask.assign(task + 1, (mask.owner == 0) & (torch.rand(mask.owner.shape) < 0.1))
    network.trained_tasks = stream.n_tasks
    return network


def _mixed_eval_throughput(network, stream) -> tuple[float, float]:
    """Samples/s over the whole test stream in shuffled mixed-task batches, and for a dense
    network of the same shape with one shared head."""
    inputs = torch.cat([s.inputs(torch.arange(len(s))) for s in stream.test])
    tasks = torch.cat([torch.full((len(s),), s.task_label) for s in stream.test])
    order = torch.randperm(len(tasks))
    inputs, tasks = inputs[order], tasks[order]
    dense = mlp(input_size=int(torch.tensor(stream.input_shape).prod()))
    network.eval()
    timings: dict[str, list[float]] = {"mixed": [], "dense": []}
    with torch.no_grad():
        for _ in range(PASSES):  # interleaved passes; the median of each side is reported
            for name, forward in (
                ("mixed", lambda x, t: network(x, t)),
                ("dense", lambda x, t: dense(x)),
            ):
                start = time.perf_counter()
                for begin in range(0, len(tasks), 1000):
                    forward(inputs[begin : begin + 1000], tasks[begin : begin + 1000])
                timings[name].append(len(tasks) / (time.perf_counter() - start))
    return statistics.median(timings["mixed"]), statistics.median(timings["dense"])


def run(*, quick: bool = False) -> dict:
    """Measure and print the three ratios; return the figures."""
    dataset = "fmnist" if DEBIAN_FASHION_MNIST.is_dir() and not quick else "digits"
    tasks, epochs = (3, 2) if quick else (5, 2)
    scenario = f"permuted-{dataset}"
    stream = build_stream(scenario, n_tasks=tasks, seed=0)
    _bare_loop_seconds(build_stream(scenario, n_tasks=1), 1)  # warm-up: threads, allocator
    bare = _bare_loop_seconds(stream, epochs)
    with tempfile.TemporaryDirectory() as folder:
        runs = {}
        for alpha in (1.0, 2.0):
            config = RunConfig(
                scenario=scenario,
                strategy="epn",
                alpha=alpha,
                tasks=tasks,
                epochs=epochs,
                lr=LR,
                batch_size=BATCH,
            )
            runs[alpha] = run_experiment(config, f"{folder}/epn-{alpha:g}")
    avalanche = avalanche_packnet(stream, int(torch.tensor(stream.input_shape).prod()), epochs)
    avalanche_seconds = sum(avalanche["seconds_per_experience"])
    mixed, dense = _mixed_eval_throughput(_packed_network(stream), stream)
    print(
        f"Speed: {scenario}, {tasks} tasks x {epochs} epochs, MLP 784-300-100 + heads, "
        f"SGD lr {LR}, batch {BATCH}"
    )
    rows = [
        [f"clearn run epn a={alpha:g} train s vs bare loop", f"{results.train_seconds:.1f}",
         f"{bare:.1f}", f"{results.train_seconds / bare:.2f}", "<= 1.30"]
        for alpha, results in runs.items()
    ]
    per_task = runs[2.0].train_seconds / tasks
    avalanche_per_task = avalanche_seconds / tasks
    rows += [
        ["s/experience epn a=2 vs Avalanche PackNet", f"{per_task:.2f}",
         f"{avalanche_per_task:.2f}", f"{per_task / avalanche_per_task:.2f}", "<= 0.50"],
        ["Avalanche PackNet vs bare loop", f"{avalanche_seconds:.1f}", f"{bare:.1f}",
         f"{avalanche_seconds / bare:.2f}", ""],
        ["eval samples/s mixed-task vs dense", f"{mixed:,.0f}", f"{dense:,.0f}",
         f"{mixed / dense:.2f}", ">= 0.80"],
    ]
    print(markdown_table(["", "clearn", "reference", "ratio", "target"], rows))
    result = {
        "scenario": scenario,
        "tasks": tasks,
        "epochs": epochs,
        "bare_loop_s": bare,
        "clearn_run_s": {f"{a:g}": r.train_seconds for a, r in runs.items()},
        "avalanche_packnet_s": avalanche_seconds,
        "mixed_eval_samples_per_s": mixed,
        "dense_eval_samples_per_s": dense,
    }
    save_result("speed", result)
    return result


if __name__ == "__main__":
    main(run, __doc__)
