"""Small reference networks used by the experiments and benchmarks."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

__all__ = ["backbone", "cnn", "mlp"]


def mlp(
    *, input_size: int, hidden: Sequence[int] = (300, 100), num_classes: int = 10
) -> nn.Sequential:
    """Flatten, then Linear+ReLU per hidden width, then Linear (the paper's 784-300-100-10)."""
    if input_size < 1 or num_classes < 1 or any(h < 1 for h in hidden):
        raise ValueError(
            f"mlp sizes must be positive, got input_size={input_size}, hidden={list(hidden)}, "
            f"num_classes={num_classes}"
        )
    layers: list[nn.Module] = [nn.Flatten()]
    width = input_size
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def cnn(*, in_channels: int, image_size: int, num_classes: int = 10) -> nn.Sequential:
    """Two conv blocks (32, 64 channels, 3×3, max-pool) then Linear 256 → classes."""
    if image_size < 4:
        raise ValueError(f"cnn needs images of at least 4×4 pixels, got {image_size}")
    side = image_size // 4
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * side * side, 256), nn.ReLU(),
        nn.Linear(256, num_classes),
    )  # fmt: skip


def backbone(
    name: str, *, input_shape: tuple[int, ...], hidden: Sequence[int] = (300, 100)
) -> tuple[nn.Sequential, int]:
    """Model `name` ("mlp" or "cnn") without its output layer, and its feature size."""
    if name == "mlp":
        network = mlp(input_size=math.prod(input_shape), hidden=hidden)
    elif name == "cnn":
        network = cnn(in_channels=input_shape[0], image_size=input_shape[-1])
    else:
        raise ValueError(f"unknown model {name!r}; choose mlp or cnn")
    output = network[-1]
    return network[:-1], output.in_features
