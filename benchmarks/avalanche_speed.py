"""EfficientPackNet as an Avalanche user runs it, on Avalanche's PermutedMNIST-shaped stream,
vs `clearn run` on the same data and settings (target: within 1.3×).

The stream is permuted Fashion-MNIST from the Debian files (no download): `clearn run`
builds it its own way; the Avalanche side gets the same tensors (the same examples, task
permutations, validation split and test sets, read from clearn's stream) through Avalanche's
own generator, `nc_benchmark(..., one_dataset_per_exp=True, task_labels=True)` over
TensorDatasets, which is how Avalanche's `PermutedMNIST` builds its stream. The user's
script: `TaskNetwork` over the same MLP, `EfficientPackNet` with the same options and
`plugins=[TensorLoaderPlugin()]`, `valid_stream=` the validation tensors as a second
`nc_benchmark`'s test stream, the test experiences of the tasks seen so far evaluated after
each task. Compared: the seconds inside `strategy.train` per task (what `clearn run`
reports as train_seconds), median of REPETITIONS interleaved repetitions.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch
from avalanche.benchmarks import nc_benchmark
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training.plugins import EvaluationPlugin
from torch.utils.data import TensorDataset

from benchmarks.common import main, save_result
from benchmarks.report import write_results_page
from clearn.app.config import RunConfig
from clearn.app.experiment import run_experiment
from clearn.app.tables import markdown_table
from clearn.models import backbone
from scenarios.streams import TaskStream, build_stream
from scenarios.tasks import TaskSplit
from strategies import EfficientPackNet, TaskNetwork
from strategies.tensor_loader import TensorLoaderPlugin

SCENARIO = "permuted-fmnist"
TARGET = 1.3
REPETITIONS = 3


class LabelledTensors(TensorDataset):
    """A TensorDataset with `targets`, as Avalanche's generators take."""

    def __init__(self, split: TaskSplit) -> None:
        inputs = split.inputs(torch.arange(len(split)))
        super().__init__(inputs, split.labels)
        self.targets = split.labels


def _avalanche_benchmark(splits: list[TaskSplit], test: list[TaskSplit]):
    return nc_benchmark(
        [LabelledTensors(s) for s in splits],
        [LabelledTensors(s) for s in test],
        n_experiences=len(splits),
        task_labels=True,
        one_dataset_per_exp=True,
        class_ids_from_zero_in_each_exp=True,
        seed=0,
    )


def _avalanche_seconds(stream: TaskStream, config: RunConfig) -> list[float]:
    """The user's script on Avalanche's stream; seconds inside `train` per task."""
    benchmark = _avalanche_benchmark(stream.train, stream.test)
    valid_stream = _avalanche_benchmark(stream.train, stream.valid).test_stream
    torch.manual_seed(config.seed)
    features, _ = backbone(config.model, input_shape=stream.input_shape, hidden=config.hidden)
    model = TaskNetwork(backbone=features, alpha=config.alpha)
    strategy = EfficientPackNet(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=config.resolved().lr),
        train_mb_size=config.batch_size,
        train_epochs=config.epochs,
        valid_stream=valid_stream,
        plugins=[TensorLoaderPlugin()],
        evaluator=EvaluationPlugin(accuracy_metrics(experience=True), loggers=[]),
        seed=config.seed,
    )
    seconds = []
    for task, experience in enumerate(benchmark.train_stream):
        began = time.perf_counter()
        strategy.train(experience, eval_streams=[])
        seconds.append(time.perf_counter() - began)
        strategy.eval(benchmark.test_stream[: task + 1])
    return seconds


def run(*, quick: bool = False) -> dict:
    began = time.perf_counter()
    tasks, epochs = (2, 2) if quick else (5, 10)
    repetitions = 1 if quick else REPETITIONS
    config = RunConfig(scenario=SCENARIO, strategy="epn", tasks=tasks, epochs=epochs)
    stream = build_stream(SCENARIO, n_tasks=tasks, seed=config.seed)
    rows, ratios = [], []
    with tempfile.TemporaryDirectory() as folder:
        for repetition in range(repetitions):
            result = run_experiment(config, Path(folder) / f"run-{repetition}")
            ours = sum(result.train_seconds_per_task)
            theirs = sum(_avalanche_seconds(stream, config))
            ratios.append(theirs / ours)
            rows.append([repetition, f"{ours:.1f}", f"{theirs:.1f}", f"{theirs / ours:.2f}×"])
    ratio = statistics.median(ratios)
    table = markdown_table(
        ["repetition", "clearn run train s", "EfficientPackNet on Avalanche's stream s", "ratio"],
        rows,
    )
    verdict = "met" if ratio <= TARGET else "missed"
    summary = f"Median ratio {ratio:.2f}× against the {TARGET}× target: {verdict}."
    print(table, summary, sep="\n")
    result = {
        "scenario": SCENARIO,
        "tasks": tasks,
        "epochs": epochs,
        "ratios": ratios,
        "median_ratio": ratio,
        "target": TARGET,
        "met": ratio <= TARGET,
    }
    save_result("avalanche_speed", result)
    write_results_page(
        "avalanche_speed-quick" if quick else "avalanche_speed",
        title="EfficientPackNet on an Avalanche stream vs `clearn run` "
              "(`python -m benchmarks --only avalanche_speed`)",
        body=f"{SCENARIO}, {tasks} tasks, at most {epochs} epochs a task; seconds inside "
             f"training, summed over the tasks.\n\n{table}\n\n{summary}\n",
        command="python -m benchmarks --only avalanche_speed" + (" --quick" if quick else ""),
        seconds=time.perf_counter() - began,
        configs={"both sides": config.to_dict()},
        defaults=RunConfig().to_dict(),
    )  # fmt: skip
    return result


if __name__ == "__main__":
    main(run, __doc__)
