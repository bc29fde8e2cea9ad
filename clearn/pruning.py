"""One-shot magnitude pruning of effective weights, layer-wise or global, by kept fraction.

Masks are plain boolean tensors keyed by layer name, so callers can apply them, store them, or
turn them into task ownership.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
from torch import Tensor

__all__ = ["DEFAULT_SCOPE", "SCOPES", "Scope", "apply_masks", "kept_fraction", "magnitude_masks"]

Scope = Literal["layer", "global"]
SCOPES: tuple[Scope, ...] = ("layer", "global")
DEFAULT_SCOPE: Scope = "layer"
"""Prune each layer by its own magnitude ranking (the Powerprop paper's and PackNet's)."""


def _check_fraction(name: str, value: float) -> float:
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a fraction in [0, 1], got {value!r}")
    return float(value)


def _top_magnitude_mask(scores: Tensor, eligible: Tensor, count: int) -> Tensor:
    """Boolean mask of the `count` eligible entries of largest |score| (ties broken by index)."""
    flat_scores = scores.abs().flatten()
    flat_eligible = eligible.flatten()
    mask = torch.zeros_like(flat_eligible)
    if count <= 0:
        return mask.view_as(eligible)
    candidates = flat_eligible.nonzero().squeeze(1)
    top = torch.topk(flat_scores[candidates], count, sorted=False).indices
    mask[candidates[top]] = True
    return mask.view_as(eligible)


def magnitude_masks(
    weights: Mapping[str, Tensor],
    kept: float | Mapping[str, float],
    *,
    scope: Scope = DEFAULT_SCOPE,
    eligible: Mapping[str, Tensor] | None = None,
) -> dict[str, Tensor]:
    """Keep the largest-magnitude `kept` fraction of the eligible weights; return boolean masks.

    `scope="layer"` keeps that fraction of each layer (`kept` may then map layer names to their
    own fractions); `scope="global"` ranks all eligible weights together. `eligible` restricts
    the ranking to some weights per layer (others are never kept); by default all are eligible.
    Counts are rounded to the nearest integer, and a layer-wise mask keeps at least one weight
    when its fraction is positive, so that no layer is cut off entirely.
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be 'layer' or 'global', got {scope!r}")
    if eligible is None:
        eligible = {name: torch.ones_like(w, dtype=torch.bool) for name, w in weights.items()}
    missing = set(weights) - set(eligible)
    if missing:
        raise ValueError(f"eligible has no entry for layers {sorted(missing)}")
    if scope == "layer":
        return _layerwise_masks(weights, kept, eligible)
    if isinstance(kept, Mapping):
        raise ValueError("per-layer kept fractions need scope='layer'")
    return _global_masks(weights, _check_fraction("kept", kept), eligible)


def _layerwise_masks(
    weights: Mapping[str, Tensor],
    kept: float | Mapping[str, float],
    eligible: Mapping[str, Tensor],
) -> dict[str, Tensor]:
    masks = {}
    for name, weight in weights.items():
        fraction = kept[name] if isinstance(kept, Mapping) else kept
        fraction = _check_fraction(f"kept[{name!r}]", fraction)
        available = int(eligible[name].sum())
        count = round(fraction * available)
        if fraction > 0 and available > 0:
            count = max(count, 1)
        masks[name] = _top_magnitude_mask(weight, eligible[name], count)
    return masks


def _global_masks(
    weights: Mapping[str, Tensor], kept: float, eligible: Mapping[str, Tensor]
) -> dict[str, Tensor]:
    names = list(weights)
    scores = torch.cat([weights[n].abs().flatten().float() for n in names])
    allowed = torch.cat([eligible[n].flatten() for n in names])
    flat_mask = _top_magnitude_mask(scores, allowed, round(kept * int(allowed.sum())))
    sizes = [weights[n].numel() for n in names]
    return {
        name: part.view_as(weights[name])
        for name, part in zip(names, flat_mask.split(sizes), strict=True)
    }


def apply_masks(weights: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Weights with the entries outside their mask set to zero (new tensors)."""
    return {name: weight * masks[name] for name, weight in weights.items()}


def kept_fraction(masks: Mapping[str, Tensor]) -> float:
    """Fraction of all weights that the masks keep."""
    total = sum(m.numel() for m in masks.values())
    return sum(int(m.sum()) for m in masks.values()) / total if total else 0.0
