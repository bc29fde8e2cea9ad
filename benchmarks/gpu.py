"""The GPU check: packed training steps and mixed-task evaluation against a bare loop on the
same device, on synthetic tensors of MNIST (1×28×28) and CIFAR (3×32×32) shapes, for the MLP,
AlexNet-like and ResNet-18 backbones; and which reduced precisions (TF32, bf16 autocast)
keep earlier tasks bit for bit.

- bare: the backbone and one head as plain modules, plain SGD;
- epn α=1 / default α: a PackedNetwork whose task 0 owns 30% of the weights, training task 1
  (frozen gradients zeroed, as EfficientPackNet does under plain SGD);
- mixed eval: a forward pass over a batch mixing two tasks, as throughput relative to the
  dense network's (≥ 1 is faster than dense);
- epochs/s: one epoch of the real data set's size (60,000 or 50,000 images) at that step time.

`python -m benchmarks.gpu --device cuda` (benchmarks/gpu.sh, with the CUDA tests);
`--device cpu` is a dry run with tiny sizes, written under $CLEARN_BENCH_RESULTS only.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from benchmarks.common import RESULTS_DIR, interleaved_step_times, save_result, sgd_step
from benchmarks.report import BENCHMARKS_DIR, write_results_page
from clearn.app.tables import markdown_table
from clearn.defaults import DEFAULT_ALPHA
from clearn.models import backbone
from clearn.network import PackedNetwork
from clearn.packing import TaskPacker

__all__ = ["SETUPS", "Sizes", "run"]

SETUPS = {
    "MLP, MNIST shape": ("mlp", (1, 28, 28), 60_000),
    "AlexNet-like, CIFAR shape": ("alexnet", (3, 32, 32), 50_000),
    "ResNet-18, CIFAR shape": ("resnet18", (3, 32, 32), 50_000),
}
"""Name → (backbone, image shape, training images of the real data set)."""
TARGET_RESNET_LOOP = 1.10
"""The issue's target: ResNet-18's packed training step at most 1.10× the bare one."""


@dataclass(frozen=True)
class Sizes:
    """How much each measurement does: a GPU run, or the CPU dry run's tiny version."""

    batch: int
    batches: int
    calls: int
    rounds: int
    freeze_steps: int
    hidden: tuple[int, ...]

    @classmethod
    def for_device(cls, device: torch.device) -> Sizes:
        if device.type == "cpu":
            return cls(batch=2, batches=1, calls=1, rounds=1, freeze_steps=1, hidden=(16,))
        return cls(batch=128, batches=20, calls=30, rounds=5, freeze_steps=20, hidden=(300, 100))


def _modes(device: torch.device) -> tuple[str, ...]:
    """The precisions measured: on the CPU (the dry run) fp32 and bf16 autocast."""
    return ("fp32", "tf32", "bf16") if device.type == "cuda" else ("fp32", "bf16")


@contextlib.contextmanager
def precision(mode: str, device: torch.device) -> Iterator[None]:
    """fp32 (TF32 off), TF32 matmuls and convolutions, or bf16 autocast, within the block."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    tf32 = mode == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
    try:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=mode == "bf16"):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _features(model: str, shape: tuple[int, ...], sizes: Sizes) -> tuple[nn.Module, int]:
    torch.manual_seed(0)
    return backbone(model, input_shape=shape, hidden=sizes.hidden)


def _packed(model: str, shape, sizes: Sizes, alpha: float, device) -> tuple:
    """A PackedNetwork training task 1, task 0 owning 30% of every layer; and its packer."""
    features, width = _features(model, shape, sizes)
    network = PackedNetwork(
        backbone=features, feature_size=width, classes_per_task=[10, 10], alpha=alpha
    ).to(device)
    packer = TaskPacker(network)
    packer.begin_task(0)
    packer.prune(0.3)
    packer.end_task()
    packer.begin_task(1)
    return network, packer


def _synchronised(step: Callable[[], None], device: torch.device) -> Callable[[], None]:
    """`step`, then wait for the device: a step is timed to its end, not to its queueing."""

    def run() -> None:
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return run


def _steps(model, shape, sizes: Sizes, mode: str, device, data) -> dict[str, Callable]:
    """Every timed variant of one backbone, each under precision `mode` (the mixed-task
    evaluation on the default-α network that the timed training steps train)."""
    inputs, labels = data
    features, width = _features(model, shape, sizes)
    bare = nn.Sequential(features, nn.Linear(width, 10)).to(device)
    steps = {"bare": sgd_step(bare, bare.parameters(), inputs, labels, batch=sizes.batch)}
    task = torch.ones(sizes.batch, dtype=torch.long, device=device)
    for name, alpha in (("epn α=1", 1.0), (f"epn α={DEFAULT_ALPHA:g}", DEFAULT_ALPHA)):
        network, packer = _packed(model, shape, sizes, alpha, device)
        steps[name] = sgd_step(
            lambda x, n=network: n(x, task), network.parameters(), inputs, labels,
            before_step=packer.zero_frozen_gradients, batch=sizes.batch,
        )  # fmt: skip
    mixed = torch.arange(sizes.batch, device=device) % 2
    batch = inputs[: sizes.batch]

    @torch.no_grad()
    def evaluate(module: nn.Module, *task_labels: Tensor) -> None:
        module.eval()
        module(batch, *task_labels)
        module.train()

    steps["dense eval"] = lambda: evaluate(bare)
    steps["mixed eval"] = lambda: evaluate(network, mixed)

    def under_mode(step: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            with precision(mode, device):
                step()

        return _synchronised(run, device)

    return {name: under_mode(step) for name, step in steps.items()}


def keeps_frozen(model: str, shape, sizes: Sizes, mode: str, device, data) -> bool:
    """Whether task 0's logits stay bit for bit while task 1 of a fresh packed network trains
    under `mode` with AdamW (whose decay and moments move every weight: the frozen ones are
    restored after each step)."""
    inputs, labels = data
    network, packer = _packed(model, shape, sizes, DEFAULT_ALPHA, device)
    network.eval()
    with torch.no_grad(), precision(mode, device):
        before = network(inputs, 0)
    network.train()
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3, weight_decay=0.01)
    task = torch.ones(len(labels), dtype=torch.long, device=device)
    for _ in range(sizes.freeze_steps):
        with precision(mode, device):
            loss = nn.functional.cross_entropy(network(inputs, task), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        packer.restore_frozen()
    network.eval()
    with torch.no_grad(), precision(mode, device):
        return torch.equal(network(inputs, 0), before)


def _data(shape, sizes: Sizes, device) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(0)
    rows = sizes.batch * sizes.batches
    inputs = torch.rand(rows, *shape, generator=generator)
    return inputs.to(device), torch.randint(0, 10, (rows,), generator=generator).to(device)


def measure(name: str, mode: str, sizes: Sizes, device: torch.device) -> dict:
    """One table row: step ratios and epochs per second of backbone `name` under `mode`."""
    model, shape, images = SETUPS[name]
    data = _data(shape, sizes, device)
    steps = _steps(model, shape, sizes, mode, device, data)
    times = interleaved_step_times(steps, reference="bare", calls=sizes.calls, rounds=sizes.rounds)
    per_epoch = math.ceil(images / sizes.batch)
    default = f"epn α={DEFAULT_ALPHA:g}"
    return {
        "backbone": name,
        "precision": mode,
        "keeps_frozen_bit_for_bit": keeps_frozen(model, shape, sizes, mode, device, data),
        "bare_ms_per_step": 1000 * times.seconds["bare"],
        "epn_alpha_1_vs_bare": times.ratio("epn α=1"),
        "epn_default_alpha_vs_bare": times.ratio(default),
        "mixed_eval_vs_dense": times.seconds["dense eval"] / times.seconds["mixed eval"],
        "bare_epochs_per_s": 1 / (times.seconds["bare"] * per_epoch),
        "epn_default_alpha_epochs_per_s": 1 / (times.seconds[default] * per_epoch),
    }


COLUMNS = {
    "backbone": "backbone", "precision": "precision",
    "keeps_frozen_bit_for_bit": "frozen bit for bit", "bare_ms_per_step": "bare ms/step",
    "epn_alpha_1_vs_bare": "epn α=1 / bare",
    "epn_default_alpha_vs_bare": f"epn α={DEFAULT_ALPHA:g} / bare",
    "mixed_eval_vs_dense": "mixed eval / dense (throughput)",
    "bare_epochs_per_s": "bare epochs/s", "epn_default_alpha_epochs_per_s": "epn epochs/s",
}  # fmt: skip
"""Each row's keys, in order, and their column headers."""


def table(rows: list[dict]) -> str:
    """The rows as a markdown table."""
    def cell(value: object) -> str:
        if isinstance(value, bool):
            return "yes" if value else "NO"
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    return markdown_table(list(COLUMNS.values()), [[cell(r[k]) for k in COLUMNS] for r in rows])


def run(*, device: str = "cuda") -> dict:
    """Measure every backbone under every precision the device has; write and print the table."""
    where = torch.device(device)
    dry_run = where.type == "cpu"
    if dry_run and RESULTS_DIR == BENCHMARKS_DIR / "results":
        raise SystemExit("a --device cpu dry run writes under $CLEARN_BENCH_RESULTS: set it")
    start, sizes = time.perf_counter(), Sizes.for_device(where)
    rows = [measure(name, mode, sizes, where) for name in SETUPS for mode in _modes(where)]
    resnet = next(
        r for r in rows if r["backbone"].startswith("ResNet") and r["precision"] == "fp32"
    )
    verdict = "met" if resnet["epn_default_alpha_vs_bare"] <= TARGET_RESNET_LOOP else "NOT met"
    summary = (
        f"ResNet-18 packed step / bare, fp32: {resnet['epn_default_alpha_vs_bare']:.3f} "
        f"(target ≤ {TARGET_RESNET_LOOP:.2f}: {verdict})"
    )
    text = table(rows)
    print(text, summary, sep="\n")
    name = "gpu-quick" if dry_run else "gpu"
    result = {"device": str(where), "sizes": sizes.__dict__, "rows": rows, "summary": summary}
    save_result(name, result)
    write_results_page(
        name, title="GPU check: packed steps vs a bare loop", body=f"{text}\n\n{summary}",
        command=f"benchmarks/gpu.sh --device {device}", seconds=time.perf_counter() - start,
        configs={}, defaults=sizes.__dict__,
    )  # fmt: skip
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda[:N], or cpu for a dry run")
    run(device=parser.parse_args().device)
