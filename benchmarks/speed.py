"""Speed, as ratios in one run on one machine, over REPETITIONS interleaved repetitions
(median, and the spread as min–max):

- `clearn run` (epn) vs a bare PyTorch loop over the same network, batches and epochs (the
  mean of the bare loops timed just before and just after the run): its training loop (the
  run less its per-epoch validation, its pruning search and the fit of each task's input
  model, all three read from the packing plugin's task reports and shown beside it;
  target ≤ 1.25 at α = 1, ≤ 1.3 at the default α), and the whole run;
- time per experience vs Avalanche's PackNet as users run it (its own loader; target ≤ 0.5
  in every repetition);
- evaluating the whole test stream in mixed-task batches vs a dense network (target ≥ 0.85×).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from benchmarks.common import main, save_result
from benchmarks.packing_vs_avalanche import avalanche_packnet
from benchmarks.report import write_results_page
from clearn.app.config import RunConfig
from clearn.app.experiment import run_experiment
from clearn.app.results import RunResult
from clearn.app.tables import markdown_table
from clearn.defaults import DEFAULT_ALPHA
from clearn.models import mlp
from clearn.network import PackedNetwork
from scenarios.datasets import DEBIAN_FASHION_MNIST
from scenarios.streams import build_stream
from scenarios.tasks import TensorBatchLoader

BATCH, LR = 60, 0.1
LOOP_TARGETS = {1.0: "<= 1.25", DEFAULT_ALPHA: "<= 1.30"}
"""The training loop's targets against the bare loop, by alpha (issue 26)."""
PASSES = 5
REPETITIONS = 3


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


def _packed_network(stream) -> PackedNetwork:
    """A network whose tasks each own a random 10% of what was free: the eval cost of a
    packed network does not depend on which weights a task owns."""
    torch.manual_seed(0)
    inputs = int(torch.tensor(stream.input_shape).prod())
    network = PackedNetwork(
        backbone=mlp(input_size=inputs)[:-1],
        feature_size=100,
        classes_per_task=stream.classes_per_task,
        alpha=2.0,
    )
    for task in range(stream.n_tasks):
        for mask in network.masks.values():
            mask.assign(task, mask.free() & (torch.rand(mask.owner.shape) < 0.1))
    network.trained_tasks = stream.n_tasks
    return network


def _mixed_eval_throughput(network, stream) -> tuple[float, float]:
    """Samples/s over the whole test stream in shuffled mixed-task batches, and for a dense
    network of the same shape with one shared head (the median of interleaved passes)."""
    inputs = torch.cat([s.inputs(torch.arange(len(s))) for s in stream.test])
    tasks = torch.cat([torch.full((len(s),), s.task_label) for s in stream.test])
    order = torch.randperm(len(tasks))
    inputs, tasks = inputs[order], tasks[order]
    dense = mlp(input_size=int(torch.tensor(stream.input_shape).prod()))
    network.eval()
    timings: dict[str, list[float]] = {"mixed": [], "dense": []}
    with torch.no_grad():
        for _ in range(PASSES):
            for name, forward in (
                ("mixed", lambda x, t: network(x, t)),
                ("dense", lambda x, t: dense(x)),
            ):
                start = time.perf_counter()
                for begin in range(0, len(tasks), 1000):
                    forward(inputs[begin : begin + 1000], tasks[begin : begin + 1000])
                timings[name].append(len(tasks) / (time.perf_counter() - start))
    return statistics.median(timings["mixed"]), statistics.median(timings["dense"])


OUTSIDE_LOOP = ("validation_seconds", "search_seconds", "input_model_seconds")
"""The parts of a task's training time, in its task report, that no bare loop has."""


def _seconds_outside_loop(result: RunResult) -> dict[str, float]:
    """Each part of the run's training time that is not its training loop, summed."""
    return {key: sum(r.get(key, 0.0) for r in result.task_reports) for key in OUTSIDE_LOOP}


def _loop_seconds(result: RunResult) -> float:
    """The run's training time less its validation, search and input-model fits."""
    return result.train_seconds - sum(_seconds_outside_loop(result).values())


def _config(scenario: str, tasks: int, epochs: int, alpha: float) -> RunConfig:
    """The `clearn run` (epn at `alpha`) that the bare loop is compared with."""
    return RunConfig(
        scenario=scenario, strategy="epn", alpha=alpha, tasks=tasks, epochs=epochs, lr=LR,
        batch_size=BATCH,
    )


def _repetition(scenario: str, stream, tasks: int, epochs: int, folder: Path) -> dict:
    """One repetition of every measurement, in a fixed order, with a bare loop timed before
    and after each run: each run is compared with the mean of the two around it (the bare
    loop's own time drifted by 6.3 → 9.4 s within one repetition on this machine)."""
    bare = [_bare_loop_seconds(stream, epochs)]
    figures: dict = {}
    for alpha in (1.0, DEFAULT_ALPHA):
        result = run_experiment(_config(scenario, tasks, epochs, alpha), folder / f"epn-{alpha:g}")
        bare.append(_bare_loop_seconds(stream, epochs))
        figures[f"epn_{alpha:g}_run_s"] = result.train_seconds
        figures[f"epn_{alpha:g}_loop_s"] = _loop_seconds(result)
        for key, seconds in _seconds_outside_loop(result).items():
            figures[f"epn_{alpha:g}_{key}"] = seconds
        figures[f"bare_around_epn_{alpha:g}_s"] = statistics.fmean(bare[-2:])
    inputs = int(torch.tensor(stream.input_shape).prod())
    figures["avalanche_packnet_s"] = sum(
        avalanche_packnet(stream, inputs, epochs)["seconds_per_experience"]
    )
    bare.append(_bare_loop_seconds(stream, epochs))
    figures["bare_around_avalanche_packnet_s"] = statistics.fmean(bare[-2:])
    figures["bare_loop_s"] = bare
    mixed, dense = _mixed_eval_throughput(_packed_network(stream), stream)
    figures["mixed_eval_samples_per_s"], figures["dense_eval_samples_per_s"] = mixed, dense
    return figures


def _ratio_cell(ratios: list[float]) -> str:
    """Median ratio and its spread over the repetitions."""
    return f"{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f})"


def run(*, quick: bool = False) -> dict:
    """Measure and print the ratios over interleaved repetitions; return the figures."""
    began = time.perf_counter()
    dataset = "fmnist" if DEBIAN_FASHION_MNIST.is_dir() and not quick else "digits"
    tasks, epochs = (3, 2) if quick else (5, 2)
    repetitions = 2 if quick else REPETITIONS
    scenario = f"permuted-{dataset}"
    stream = build_stream(scenario, n_tasks=tasks, seed=0)
    _bare_loop_seconds(build_stream(scenario, n_tasks=1), 1)  # warm-up: threads, allocator
    with tempfile.TemporaryDirectory() as folder:
        runs = [
            _repetition(scenario, stream, tasks, epochs, Path(folder) / f"repetition-{i}")
            for i in range(repetitions)
        ]
    median = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
    ratios = lambda key, reference: [r[key] / r[reference] for r in runs]  # noqa: E731
    summary = (
        f"Speed: {scenario}, {tasks} tasks x {epochs} epochs, MLP 784-300-100 + heads, "
        f"SGD lr {LR}, batch {BATCH}; {repetitions} interleaved repetitions, "
        f"median (min–max)"
    )
    rows = []
    for alpha in (1.0, DEFAULT_ALPHA):
        loop, whole = f"epn_{alpha:g}_loop_s", f"epn_{alpha:g}_run_s"
        bare = f"bare_around_epn_{alpha:g}_s"
        rows += [
            [f"clearn run epn a={alpha:g}: training loop s vs bare loop", f"{median(loop):.1f}",
             f"{median(bare):.1f}", _ratio_cell(ratios(loop, bare)), LOOP_TARGETS[alpha]],
            [f"clearn run epn a={alpha:g}: whole run s (+ validation, search, input model)",
             f"{median(whole):.1f}", f"{median(bare):.1f}", _ratio_cell(ratios(whole, bare)),
             ""],
            [f"clearn run epn a={alpha:g}: validation / search / input model s",
             " / ".join(f"{median(f'epn_{alpha:g}_{key}'):.1f}" for key in OUTSIDE_LOOP),
             "", "", ""],
        ]
    default_run = f"epn_{DEFAULT_ALPHA:g}_run_s"
    packnet, bare = "avalanche_packnet_s", "bare_around_avalanche_packnet_s"
    rows += [
        [f"s/experience epn a={DEFAULT_ALPHA:g} vs Avalanche PackNet",
         f"{median(default_run) / tasks:.2f}", f"{median(packnet) / tasks:.2f}",
         _ratio_cell(ratios(default_run, packnet)), "<= 0.50 (every rep.)"],
        ["Avalanche PackNet vs bare loop", f"{median(packnet):.1f}", f"{median(bare):.1f}",
         _ratio_cell(ratios(packnet, bare)), ""],
        ["eval samples/s mixed-task vs dense", f"{median('mixed_eval_samples_per_s'):,.0f}",
         f"{median('dense_eval_samples_per_s'):,.0f}",
         _ratio_cell(ratios("mixed_eval_samples_per_s", "dense_eval_samples_per_s")),
         ">= 0.85"],
    ]
    table = markdown_table(["", "clearn", "reference", "ratio", "target"], rows)
    print(summary, table, sep="\n")
    result = {"scenario": scenario, "tasks": tasks, "epochs": epochs, "repetitions": runs}
    save_result("speed", result)
    shared = {"scenario": scenario, "tasks": tasks, "epochs": epochs}
    write_results_page(
        "speed-quick" if quick else "speed",
        title="Speed against a bare PyTorch loop and Avalanche's PackNet "
              "(`python -m benchmarks --only speed`)",
        body=f"{summary}.\n\n{table}\n",
        command="python -m benchmarks --only speed" + (" --quick" if quick else ""),
        seconds=time.perf_counter() - began,
        configs={
            **{f"clearn run epn a={alpha:g}": _config(scenario, tasks, epochs, alpha).to_dict()
               for alpha in (1.0, DEFAULT_ALPHA)},
            "bare loop": {**shared, "strategy": "naive", "alpha": 1.0, "lr": LR,
                          "batch_size": BATCH},
            "Avalanche PackNet (as in packing_vs_avalanche)": shared,
        },
        defaults=RunConfig().to_dict(),
    )  # fmt: skip
    return result


if __name__ == "__main__":
    main(run, __doc__)
