"""Small reference networks used by the experiments and benchmarks."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

__all__ = ["MODELS", "BasicBlock", "alexnet", "backbone", "cnn", "mlp", "resnet18"]

MODELS = ("mlp", "cnn", "alexnet", "resnet18")


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


def alexnet(*, in_channels: int, image_size: int, num_classes: int = 10) -> nn.Sequential:
    """The AlexNet-like network of HAT, GPM and WSN for 32×32 images: conv 64 4×4, 128 3×3,
    256 2×2, each with ReLU, dropout and 2×2 max-pooling, then 2048-2048 with dropout (HAT's
    rates: 0.2 after the convolutions, 0.5 after the dense layers)."""
    side = ((((image_size - 3) // 2) - 2) // 2 - 1) // 2
    if side < 1:
        raise ValueError(f"alexnet needs images of at least 19×19 pixels, got {image_size}")
    return nn.Sequential(
        nn.Conv2d(in_channels, 64, 4), nn.ReLU(), nn.Dropout(0.2), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3), nn.ReLU(), nn.Dropout(0.2), nn.MaxPool2d(2),
        nn.Conv2d(128, 256, 2), nn.ReLU(), nn.Dropout(0.5), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(256 * side * side, 2048), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(2048, 2048), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(2048, num_classes),
    )  # fmt: skip


class BasicBlock(nn.Module):
    """ResNet's two 3×3 convolutions with BatchNorm and a shortcut (1×1 when shapes change)."""

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x):
        out = nn.functional.relu(self.bn1(self.conv1(x)))
        return nn.functional.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def resnet18(
    *, in_channels: int, num_classes: int = 10, base_filters: int = 20
) -> nn.Sequential:
    """The reduced ResNet-18 of GEM, SupSup and WSN: 20 base filters, four stages of two
    BasicBlocks (20, 40, 80, 160 channels, strides 1, 2, 2, 2), average-pooled to 160 features."""
    nf = base_filters
    stages, in_planes = [], nf
    for planes, stride in ((nf, 1), (2 * nf, 2), (4 * nf, 2), (8 * nf, 2)):
        stages.append(
            nn.Sequential(BasicBlock(in_planes, planes, stride), BasicBlock(planes, planes, 1))
        )
        in_planes = planes
    return nn.Sequential(
        nn.Conv2d(in_channels, nf, 3, padding=1, bias=False), nn.BatchNorm2d(nf), nn.ReLU(),
        *stages,
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(8 * nf, num_classes),
    )  # fmt: skip


def backbone(
    name: str, *, input_shape: tuple[int, ...], hidden: Sequence[int] = (300, 100)
) -> tuple[nn.Sequential, int]:
    """Model `name` (one of MODELS) without its output layer, and its feature size."""
    if name == "mlp":
        network = mlp(input_size=math.prod(input_shape), hidden=hidden)
    elif name == "cnn":
        network = cnn(in_channels=input_shape[0], image_size=input_shape[-1])
    elif name == "alexnet":
        network = alexnet(in_channels=input_shape[0], image_size=input_shape[-1])
    elif name == "resnet18":
        network = resnet18(in_channels=input_shape[0])
    else:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    output = network[-1]
    return network[:-1], output.in_features
