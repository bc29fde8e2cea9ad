"""Small reference networks used by the experiments and benchmarks."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

__all__ = ["mlp"]


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
