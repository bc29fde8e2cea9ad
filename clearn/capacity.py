"""Capacity: the share of a network's maskable weights each task owns, and the share still free."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["Capacity", "ownership_capacity"]


@dataclass(frozen=True)
class Capacity:
    """Shares of the maskable weights: `owned[t]` by task t, `free` by no task."""

    owned: tuple[float, ...]
    free: float

    @property
    def used(self) -> float:
        """Share owned by some task (1 − free)."""
        return 1.0 - self.free


def ownership_capacity(
    owners: Sequence[Tensor], *, tasks: int, first_task_code: int
) -> Capacity:
    """Capacity from per-weight owner codes: task t is stored as `first_task_code + t`
    (clearn's TaskMask: 1 + t, a free weight 0; Avalanche's PackNet: t, a pruned weight 255).

    Free is every weight no trained task owns, whatever its code: Avalanche's PackNet re-codes
    its free weights to the next task's index once a task is frozen.
    One counting pass over the owners, not one comparison per task.
    """
    total = sum(o.numel() for o in owners)
    if total == 0:
        raise ValueError("no maskable weights to measure capacity on")
    size = max(first_task_code + tasks, *(int(o.max()) for o in owners)) + 1
    counts = sum(torch.bincount(o.flatten().long(), minlength=size) for o in owners)
    owned_counts = [int(counts[first_task_code + t]) for t in range(tasks)]
    owned = tuple(count / total for count in owned_counts)
    return Capacity(owned=owned, free=(total - sum(owned_counts)) / total)
