"""clearn's packing plugin vs Avalanche 0.6.0's own PackNet, same stream and epochs, one run.

Figures: training time per experience, bytes of mask state per prunable weight, and the
EfficientPackNet search's time as a share of the task's training time.
"""

from __future__ import annotations

import time

import torch
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.models.packnet import PackNetModel
from avalanche.training import Naive, PackNet
from avalanche.training.plugins import EvaluationPlugin

from benchmarks.common import main, save_result
from benchmarks.report import write_results_page
from clearn.app.config import RunConfig
from clearn.app.tables import markdown_table
from clearn.models import mlp
from scenarios.datasets import DEBIAN_FASHION_MNIST
from scenarios.streams import TaskStream, build_stream
from strategies.epn import PackingPlugin
from strategies.metric_keys import experience_accuracy_key
from strategies.task_model import TaskNetwork
from strategies.tensor_loader import TensorLoaderPlugin

LR, BATCH = 0.1, 60
ALPHA = 2.0
"""clearn's Powerprop α here."""


def _evaluator() -> EvaluationPlugin:
    return EvaluationPlugin(accuracy_metrics(experience=True), loggers=[])


def _timed_stream(strategy, stream: TaskStream) -> tuple[list[float], list[float]]:
    seconds, accuracy = [], []
    for task, experience in enumerate(stream.benchmark.train_stream):
        start = time.perf_counter()
        strategy.train(experience, eval_streams=[])
        seconds.append(time.perf_counter() - start)
        metrics = strategy.eval(stream.benchmark.test_stream[task : task + 1])
        accuracy.append(metrics[experience_accuracy_key(task)])
    return seconds, accuracy


def _ours(stream: TaskStream, inputs: int, epochs: int, alpha: float) -> dict:
    torch.manual_seed(0)
    backbone = mlp(input_size=inputs)[:-1]  # 784-300-100, heads per task
    network = TaskNetwork(
        backbone=backbone, feature_size=100, classes_per_task=stream.classes_per_task, alpha=alpha
    )
    plugin = PackingPlugin(valid_stream=stream.benchmark.valid_stream)
    plugin.attach(network)
    search_seconds: list[float] = []
    search = plugin.packer.search

    def timed_search(evaluate, **options):
        start = time.perf_counter()
        result = search(evaluate, **options)
        search_seconds.append(time.perf_counter() - start)
        return result

    plugin.packer.search = timed_search
    strategy = Naive(
        model=network,
        optimizer=torch.optim.SGD(network.parameters(), lr=LR),
        train_mb_size=BATCH,
        train_epochs=epochs,
        eval_mb_size=1000,
        plugins=[TensorLoaderPlugin(), plugin],
        evaluator=_evaluator(),
    )
    seconds, accuracy = _timed_stream(strategy, stream)
    masked = sum(m.owner.numel() for m in network.masks.values())
    state = sum(m.owner.numel() * m.owner.element_size() for m in network.masks.values())
    cache = sum(
        v.numel() * v.element_size()
        for m in network.masks.values()
        for v in m._views.values()
        if v is not None
    )
    return {
        "seconds_per_experience": seconds,
        "test_accuracy": accuracy,
        "mask_state_bytes_per_weight": state / masked,
        "view_cache_bytes_per_weight": cache / masked,
        "search_share_of_training": [s / t for s, t in zip(search_seconds, seconds, strict=True)],
        "capacity": list(network.capacity().owned),
    }


def avalanche_packnet(stream: TaskStream, inputs: int, epochs: int) -> dict:
    torch.manual_seed(0)
    model = PackNetModel(mlp(input_size=inputs))
    strategy = PackNet(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=LR),
        post_prune_epochs=1,
        prune_proportion=0.5,
        train_mb_size=BATCH,
        train_epochs=epochs,
        eval_mb_size=1000,
        evaluator=_evaluator(),
    )
    seconds, accuracy = _timed_stream(strategy, stream)
    weights = masked_bytes = 0
    for module in model.modules():
        if hasattr(module, "task_index"):
            weights += module.task_index.numel()
            masked_bytes += sum(
                getattr(module, n).numel() * getattr(module, n).element_size()
                for n in ("task_index", "visible_mask", "unfrozen_mask")
            )
    return {
        "seconds_per_experience": seconds,
        "test_accuracy": accuracy,
        "mask_state_bytes_per_weight": masked_bytes / weights,
    }


def run(*, quick: bool = False) -> dict:
    """Run both on the same stream; print the comparison; return the figures."""
    began = time.perf_counter()
    dataset = "fmnist" if DEBIAN_FASHION_MNIST.is_dir() and not quick else "digits"
    tasks, epochs = (3, 2) if quick else (3, 3)
    stream = build_stream(f"permuted-{dataset}", n_tasks=tasks, seed=0)
    inputs = int(torch.tensor(stream.input_shape).prod())
    ours = _ours(stream, inputs, epochs, alpha=ALPHA)
    theirs = avalanche_packnet(stream, inputs, epochs)
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    ratio = mean(ours["seconds_per_experience"]) / mean(theirs["seconds_per_experience"])
    summary = (
        f"Packing vs Avalanche PackNet: permuted-{dataset}, {tasks} tasks x {epochs} epochs, "
        f"MLP {inputs}-300-100, SGD lr {LR}, batch {BATCH}"
    )
    bytes_ratio = ours["mask_state_bytes_per_weight"] / theirs["mask_state_bytes_per_weight"]
    rows = [
        ["train s / experience", f"{mean(ours['seconds_per_experience']):.2f}",
         f"{mean(theirs['seconds_per_experience']):.2f}", f"{ratio:.2f}", "<= 1.00"],
        ["mask state bytes / weight", f"{ours['mask_state_bytes_per_weight']:.2f}",
         f"{theirs['mask_state_bytes_per_weight']:.2f}", f"{bytes_ratio:.2f}", "<= 1 byte"],
        ["+ view cache bytes / weight", f"{ours['view_cache_bytes_per_weight']:.2f}", "", "", ""],
        ["EPN search / training time (max)", f"{max(ours['search_share_of_training']):.1%}",
         "–", "", "<= 10%"],
        ["test acc per task", [round(a, 3) for a in ours["test_accuracy"]],
         [round(a, 3) for a in theirs["test_accuracy"]], "", ""],
        ["capacity owned per task", [round(c, 3) for c in ours["capacity"]], "", "", ""],
    ]
    table = markdown_table(["", "clearn EPN a=2", "Avalanche PackNet", "ratio", "target"], rows)
    print(summary, table, sep="\n")
    result = {
        "dataset": dataset,
        "tasks": tasks,
        "epochs": epochs,
        "clearn": ours,
        "avalanche_packnet": theirs,
        "time_ratio": ratio,
    }
    save_result("packing_vs_avalanche", result)
    shared = {"scenario": f"permuted-{dataset}", "tasks": tasks, "epochs": epochs, "lr": LR,
              "batch_size": BATCH}
    write_results_page(
        "packing_vs_avalanche-quick" if quick else "packing_vs_avalanche",
        title="clearn's packing plugin vs Avalanche's PackNet "
              "(`python -m benchmarks --only packing_vs_avalanche`)",
        body=f"{summary}.\n\n{table}\n",
        command="python -m benchmarks --only packing_vs_avalanche" + (" --quick" if quick else ""),
        seconds=time.perf_counter() - began,
        configs={
            "clearn EPN a=2 (PackingPlugin on Naive)": {**shared, "alpha": ALPHA},
            "Avalanche PackNet": {**shared, "prune_proportion": 0.5, "post_prune_epochs": 1},
        },
        defaults=RunConfig().to_dict(),
    )  # fmt: skip
    return result


if __name__ == "__main__":
    main(run, __doc__)
