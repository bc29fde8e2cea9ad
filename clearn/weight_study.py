"""Where Powerprop puts the weights: movement from init, ranking stability, per-layer shares.

Pure functions of weight dicts (layer name → tensor, as `effective_weights` returns), so
they apply to any trained network and its initial copy.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor

from clearn.pruning import magnitude_masks

__all__ = [
    "kept_share_per_layer",
    "magnitude_histogram",
    "moved_fraction",
    "movement_by_initial_magnitude",
    "ranking_overlap",
]


def moved_fraction(
    initial: Mapping[str, Tensor], final: Mapping[str, Tensor], *, threshold: float = 0.5
) -> float:
    """Share of all weights whose change exceeds `threshold` × their layer's initial mean |w|."""
    moved = total = 0
    for name, start in initial.items():
        scale = start.abs().mean()
        moved += int(((final[name] - start).abs() > threshold * scale).sum())
        total += start.numel()
    return moved / total


def movement_by_initial_magnitude(
    initial: Mapping[str, Tensor], final: Mapping[str, Tensor], *, bins: int = 10
) -> list[float]:
    """Mean |change| / layer's initial mean |w|, per quantile bin of initial |w| (small first).

    Under Powerprop the gradient of a weight scales with |θ|^(α−1): small weights should
    barely move and large ones move most ("rich get richer"); with α = 1 the bins are flat.
    """
    sums = torch.zeros(bins, dtype=torch.float64)
    counts = torch.zeros(bins, dtype=torch.float64)
    for name, start in initial.items():
        magnitude = start.abs().flatten()
        change = (final[name] - start).abs().flatten().double() / magnitude.mean()
        rank = magnitude.argsort().argsort()
        which = (rank * bins // magnitude.numel()).clamp(max=bins - 1)
        sums += torch.zeros(bins, dtype=torch.float64).index_add_(0, which, change)
        counts += torch.bincount(which, minlength=bins).double()
    return (sums / counts.clamp(min=1)).tolist()


def ranking_overlap(
    initial: Mapping[str, Tensor], final: Mapping[str, Tensor], kept: float
) -> float:
    """Share of the weights kept by layer-wise magnitude pruning of `final` that the same
    pruning of `initial` would also have kept (chance level: `kept`)."""
    at_init = magnitude_masks(initial, kept, scope="layer")
    at_end = magnitude_masks(final, kept, scope="layer")
    both = sum(int((at_init[n] & at_end[n]).sum()) for n in final)
    return both / max(1, sum(int(m.sum()) for m in at_end.values()))


def kept_share_per_layer(weights: Mapping[str, Tensor], kept: float) -> dict[str, float]:
    """Share of each layer that survives global magnitude pruning to `kept` of all weights."""
    masks = magnitude_masks(weights, kept, scope="global")
    return {name: float(mask.float().mean()) for name, mask in masks.items()}


def magnitude_histogram(
    magnitudes: Tensor, *, low: float | None = None, bins: int = 60
) -> dict[str, list[float] | list[int] | int]:
    """Counts of the nonzero `magnitudes` in `bins` log-spaced bins from `low` (default: the
    smallest nonzero value) to the largest, and how many are exactly zero."""
    values = magnitudes.detach().double().cpu().flatten()
    nonzero = values[values > 0]
    if low is None:
        low = float(nonzero.min()) if len(nonzero) else 1e-8
    high = float(nonzero.max()) if len(nonzero) else 1.0
    edges = np.geomspace(low, high * 1.0001, bins + 1)
    counts, _ = np.histogram(nonzero.numpy(), bins=edges)
    return {"edges": edges.tolist(), "counts": counts.tolist(), "zeros": int((values == 0).sum())}
