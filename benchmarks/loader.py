"""Stream loading: the tensor batch loader vs indexing the tensors directly, and an Avalanche
Naive epoch with Avalanche's own loader vs with TensorLoaderPlugin, side by side in one run."""

from __future__ import annotations

import time

import torch
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin

from benchmarks.common import main, save_result
from benchmarks.report import write_results_page
from clearn.app.config import RunConfig
from clearn.app.tables import markdown_table
from clearn.models import mlp
from scenarios.datasets import DEBIAN_FASHION_MNIST
from scenarios.streams import build_stream
from scenarios.tasks import TensorBatchLoader
from strategies.tensor_loader import TensorLoaderPlugin

BATCH, LR = 60, 0.1


def _samples_per_second(batches, count: int) -> float:
    start = time.perf_counter()
    for _ in batches:
        pass
    return count / (time.perf_counter() - start)


def _direct_batches(split):
    """The floor: the same gather, scale and permutation written inline on the tensors."""
    order = torch.randperm(len(split))
    images, rows, labels = split.images, split.rows, split.labels
    for start in range(0, len(order), BATCH):
        positions = order[start : start + BATCH]
        batch = images[rows[positions]].float().div_(split.pixel_max)
        yield batch.flatten(1)[:, split.permutation].view(batch.shape), labels[positions]


def _naive_epoch_seconds(stream, inputs: int, plugins: list) -> float:
    torch.manual_seed(0)
    model = mlp(input_size=inputs)
    strategy = Naive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=LR),
        train_mb_size=BATCH,
        train_epochs=1,
        plugins=plugins,
        evaluator=EvaluationPlugin(loggers=[]),
    )
    start = time.perf_counter()
    strategy.train(stream.benchmark.train_stream[1], eval_streams=[])
    return time.perf_counter() - start


def run(*, quick: bool = False) -> dict:
    """Measure and print loader throughput and Naive epoch times; return the figures."""
    began = time.perf_counter()
    dataset = "fmnist" if DEBIAN_FASHION_MNIST.is_dir() and not quick else "digits"
    stream = build_stream(f"permuted-{dataset}", n_tasks=2)
    split = stream.train[1]
    inputs = int(torch.tensor(stream.input_shape).prod())
    direct = _samples_per_second(_direct_batches(split), len(split))
    ours = _samples_per_second(TensorBatchLoader(split, batch_size=BATCH, shuffle=True), len(split))
    avalanche_epoch = _naive_epoch_seconds(stream, inputs, [])
    ours_epoch = _naive_epoch_seconds(stream, inputs, [TensorLoaderPlugin()])
    summary = f"Loading permuted-{dataset} task 2 ({len(split)} training images), batch {BATCH}"
    rows = [
        ["samples/s: TensorBatchLoader vs direct", f"{ours:,.0f}", f"{direct:,.0f}",
         f"{ours / direct:.2f}"],
        ["Naive epoch s: ours vs Avalanche", f"{ours_epoch:.2f}", f"{avalanche_epoch:.2f}",
         f"{ours_epoch / avalanche_epoch:.2f}"],
    ]
    table = markdown_table(["", "clearn", "reference", "ratio"], rows)
    print(summary, table, sep="\n")
    result = {
        "dataset": dataset,
        "loader_samples_per_s": ours,
        "direct_samples_per_s": direct,
        "naive_epoch_s_tensor_loader": ours_epoch,
        "naive_epoch_s_avalanche_loader": avalanche_epoch,
    }
    save_result("loader", result)
    write_results_page(
        "loader-quick" if quick else "loader",
        title="Stream loading: the tensor batch loader and TensorLoaderPlugin "
              "(`python -m benchmarks --only loader`)",
        body=f"{summary}.\n\n{table}\n",
        command="python -m benchmarks --only loader" + (" --quick" if quick else ""),
        seconds=time.perf_counter() - began,
        configs={"loading and Naive epoch": {
            "scenario": f"permuted-{dataset}", "tasks": 2, "batch_size": BATCH,
            "strategy": "naive", "epochs": 1, "lr": LR}},
        defaults=RunConfig().to_dict(),
    )  # fmt: skip
    return result


if __name__ == "__main__":
    main(run, __doc__)
