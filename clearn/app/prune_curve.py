"""The Powerprop paper's Figure 1a protocol: train an MLP per α, prune one-shot, read accuracy.

This is an experiment runner: it assembles data from `scenarios` with the mechanism in
`clearn` (Powerprop, magnitude pruning) and writes `prune_curve.json` and `prune_curve.png`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call
from tqdm.auto import tqdm

from clearn.app.config import check_device, check_run_alpha, check_seed
from clearn.app.io import write_json_atomic
from clearn.app.plots import plot_prune_curve
from clearn.app.run_folder import claim_run_folder
from clearn.app.tables import markdown_table
from clearn.export import plain_copy
from clearn.models import mlp
from clearn.powerprop import apply_powerprop, effective_weights
from clearn.pruning import Scope, magnitude_masks
from scenarios.datasets import ImageData, load_dataset

__all__ = [
    "PruneCurveConfig",
    "kept_fractions",
    "masked_accuracy",
    "protocol_splits",
    "run_prune_curve",
    "summary_table",
    "train_mlp",
]


@dataclass(frozen=True, kw_only=True)
class PruneCurveConfig:
    """Settings of one pruning-curve run; defaults are the official notebook's."""

    dataset: str = "digits"
    alphas: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0)
    epochs: int = 20
    steps: int | None = None
    """Training steps per α; overrides `epochs` when given (the paper uses 50,000)."""
    lr: float = 0.1
    batch_size: int = 60
    hidden: tuple[int, ...] = (300, 100)
    points: int = 20
    min_kept: float = 0.01
    scope: Scope = "layer"
    plain_output: bool = False
    """Leave the output layer without Powerprop (it is still pruned)."""
    validation_fraction: float = 1 / 12
    """Share of the training images held out (MNIST: 5,000 of 60,000, as in the notebook)."""
    seed: int = 0
    data_root: str | None = None
    download: bool = False
    device: str = "cpu"

    def __post_init__(self) -> None:
        """Check every setting; ValueError naming the one to change."""
        for alpha in self.alphas:
            check_run_alpha(alpha)
        if not self.alphas:
            raise ValueError("give at least one alpha")
        check_seed(self.seed)
        if self.device == "auto":
            raise ValueError("device must be cpu or cuda[:N] (resolve auto before), got 'auto'")
        check_device(self.device)
        if self.epochs < 1 or (self.steps is not None and self.steps < 1):
            raise ValueError("epochs and steps must be at least 1")
        if self.lr <= 0 or self.batch_size < 1:
            raise ValueError("lr must be positive and batch_size at least 1")
        if not 0 < self.min_kept <= 1 or self.points < 2:
            raise ValueError("min_kept must be in (0, 1] and points at least 2")
        if not 0 < self.validation_fraction < 1:
            raise ValueError("validation_fraction must be in (0, 1)")


def kept_fractions(points: int, min_kept: float) -> list[float]:
    """`points` log-spaced kept fractions from `min_kept` to 1, ascending."""
    return [float(k) for k in np.logspace(math.log10(min_kept), 0.0, points)]


def _flat_inputs(images: Tensor, pixel_max: float, device: str) -> Tensor:
    return (images.flatten(1).float() / pixel_max).to(device)


def _accuracy(
    model: nn.Module, inputs: Tensor, labels: Tensor, params: dict | None = None
) -> float:
    with torch.no_grad():
        logits = model(inputs) if params is None else functional_call(model, params, (inputs,))
    return float((logits.argmax(1) == labels).float().mean())


def masked_accuracy(
    model: nn.Module, masks: dict[str, Tensor], inputs: Tensor, labels: Tensor
) -> float:
    """Accuracy of a plain `model` with each masked layer's weight zeroed outside its mask
    (layers without a mask stay dense); the model itself is not changed."""
    params = dict(model.named_parameters())
    layers = dict(model.named_modules())
    params.update({f"{n}.weight": layers[n].weight.detach() * m for n, m in masks.items()})
    return _accuracy(model, inputs, labels, params)


def _train(
    model: nn.Module,
    inputs: Tensor,
    labels: Tensor,
    config: PruneCurveConfig,
    steps: int,
    description: str,
) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    loss_fn = nn.CrossEntropyLoss()
    order = torch.empty(0, dtype=torch.long)
    position = 0
    for _ in tqdm(range(steps), desc=description, unit="step", leave=False, mininterval=1.0):
        if position + config.batch_size > len(order):
            order, position = torch.randperm(len(labels), generator=generator), 0
        batch = order[position : position + config.batch_size].to(inputs.device)
        position += config.batch_size
        loss = loss_fn(model(inputs[batch]), labels[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{description}: loss became {loss.item()}; lower --lr")
        optimizer.step()


def _output_layer(model: nn.Module) -> str:
    return [name for name, m in model.named_modules() if isinstance(m, nn.Linear)][-1]


def train_mlp(
    alpha: float,
    data: ImageData,
    splits: dict[str, tuple[Tensor, Tensor]],
    config: PruneCurveConfig,
    steps: int,
) -> tuple[dict[str, Tensor], nn.Module]:
    """Train the protocol's MLP with Powerprop `alpha`; return its initial effective weights
    and the trained network with the effective weights baked in (no parametrization)."""
    torch.manual_seed(config.seed)
    input_size = int(np.prod(data.input_shape))
    model = mlp(input_size=input_size, hidden=config.hidden, num_classes=data.num_classes)
    output = _output_layer(model)
    apply_powerprop(model, alpha=alpha, exclude=[output] if config.plain_output else [])
    model.to(config.device)
    initial = effective_weights(model)
    _train(model, *splits["train"], config, steps, f"α={alpha:g}")
    model.eval()
    return initial, plain_copy(model)  # the model itself stays parametrized


def _curve_for_alpha(
    alpha: float,
    data: ImageData,
    splits: dict[str, tuple[Tensor, Tensor]],
    config: PruneCurveConfig,
    steps: int,
) -> dict[str, Any]:
    _, dense = train_mlp(alpha, data, splits, config, steps)
    output = _output_layer(dense)
    weights = effective_weights(dense)
    kept_list = kept_fractions(config.points, config.min_kept)
    test_acc, val_acc = [], []
    for kept in kept_list:
        if config.scope == "layer":
            per_layer = {name: min(1.0, 2 * kept) if name == output else kept for name in weights}
            masks = magnitude_masks(weights, per_layer, scope="layer")
        else:
            masks = magnitude_masks(weights, kept, scope="global")
        test_acc.append(masked_accuracy(dense, masks, *splits["test"]))
        val_acc.append(masked_accuracy(dense, masks, *splits["val"]))
    return {
        "kept": kept_list,
        "test_acc": test_acc,
        "val_acc": val_acc,
        "dense_test_acc": _accuracy(dense, *splits["test"]),
        "dense_val_acc": _accuracy(dense, *splits["val"]),
    }


def protocol_splits(data: ImageData, config: PruneCurveConfig) -> dict[str, tuple[Tensor, Tensor]]:
    count = len(data.train_labels)
    val_count = round(config.validation_fraction * count)
    device = config.device
    inputs = _flat_inputs(data.train_images, data.pixel_max, device)
    labels = data.train_labels.to(device)
    return {
        "train": (inputs[: count - val_count], labels[: count - val_count]),
        "val": (inputs[count - val_count :], labels[count - val_count :]),
        "test": (
            _flat_inputs(data.test_images, data.pixel_max, device),
            data.test_labels.to(device),
        ),
    }


def run_prune_curve(
    config: PruneCurveConfig, out_dir: str | Path, data: ImageData | None = None
) -> dict[str, Any]:
    """Run the protocol for each α of `config`; write JSON and PNG into `out_dir` (a new or
    empty folder, held as a run folder is); return it."""
    out = Path(out_dir)
    with claim_run_folder(out, resume=False):
        return _run_prune_curve(config, out, data)


def _run_prune_curve(config: PruneCurveConfig, out: Path, data: ImageData | None) -> dict[str, Any]:
    if data is None:
        data = load_dataset(config.dataset, root=config.data_root, download=config.download)
    splits = protocol_splits(data, config)
    steps = config.steps or config.epochs * math.ceil(len(splits["train"][1]) / config.batch_size)
    curves = {}
    for alpha in tqdm(config.alphas, desc="alphas", unit="α"):
        try:
            curves[f"{alpha:g}"] = _curve_for_alpha(alpha, data, splits, config, steps)
        except FloatingPointError as error:  # one diverging α must not lose the others
            curves[f"{alpha:g}"] = {"diverged": str(error)}
            tqdm.write(f"α={alpha:g} diverged: {error}")
    result = {
        "dataset": data.name,
        "steps": steps,
        "scope": config.scope,
        "alphas": curves,
        "config": {**asdict(config), "alphas": list(config.alphas), "hidden": list(config.hidden)},
    }
    write_json_atomic(out / "prune_curve.json", result)
    plot_prune_curve(result, out / "prune_curve.png")
    return result


def summary_table(result: dict[str, Any], at: Sequence[float] = (0.02, 0.05, 0.1, 0.2, 0.5)) -> str:
    """Markdown table of test accuracy per α at the kept fractions closest to `at`."""
    alphas = result["alphas"]
    first = next((s for s in alphas.values() if "diverged" not in s), None)
    if first is None:
        return "every alpha diverged"
    columns = [
        min(range(len(first["kept"])), key=lambda i, a=a: abs(first["kept"][i] - a)) for a in at
    ]
    header = ["α", "dense", *(f"{100 * first['kept'][i]:.1f}% kept" for i in columns)]
    rows = []
    for alpha, series in alphas.items():
        if "diverged" in series:
            rows.append([alpha, "diverged", *("–" for _ in columns)])
            continue
        accuracies = (f"{series['test_acc'][i]:.3f}" for i in columns)
        rows.append([alpha, f"{series['dense_test_acc']:.3f}", *accuracies])
    return markdown_table(header, rows)
