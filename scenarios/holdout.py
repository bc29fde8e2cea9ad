"""Which examples a validation hold-out takes: a seeded random share that empties no class."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["held_out_mask", "held_out_positions"]


def held_out_positions(order: Tensor, labels: Tensor, count: int) -> Tensor:
    """Positions in `order` of the first `count` examples whose class keeps a later example
    in `order`, so that no class loses all its training examples to validation.

    `order` is a random permutation of the examples, `labels` their classes (indexed by
    example). Where taking the first `count` of `order` would empty no class, these are
    exactly positions 0..count-1: the plain random hold-out.
    """
    ordered = labels[order]
    positions = torch.arange(len(order))
    last = torch.full((int(labels.max()) + 1,), -1, dtype=torch.long)
    last = last.scatter_reduce(0, ordered, positions, reduce="amax")
    return positions[positions < last[ordered]][:count]


def held_out_mask(order: Tensor, labels: Tensor, count: int) -> Tensor:
    """True at the positions in `order` that `held_out_positions` holds out."""
    held = torch.zeros(len(order), dtype=torch.bool)
    held[held_out_positions(order, labels, count)] = True
    return held
