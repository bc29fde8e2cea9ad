"""Per-task statistics of the inputs: each input feature's mean and variance, task by task.

What the "inputs" task inference (`clearn.task_inference`) compares a new input with: two
numbers per input feature and task, held as buffers that grow with the tasks recorded, so they
move with the network (`.to(device)`) and are saved in its state dict.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

__all__ = ["InputStatistics"]


class InputStatistics(nn.Module):
    """Mean and variance of each input feature over each task's training inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.mean: Tensor
        """(tasks, features): each task's mean of every input feature (float32)."""
        self.register_buffer("mean", torch.zeros(0, 0))
        self.variance: Tensor
        """(tasks, features): each task's variance (biased) of every input feature."""
        self.register_buffer("variance", torch.zeros(0, 0))
        self.recorded: Tensor
        """(tasks,): 1 where the task's statistics were recorded (uint8: every distributed
        backend broadcasts it)."""
        self.register_buffer("recorded", torch.zeros(0, dtype=torch.uint8))

    def __contains__(self, task: object) -> bool:
        known = isinstance(task, int) and 0 <= task < len(self.recorded)
        return known and bool(self.recorded[task])

    def __getitem__(self, task: int) -> tuple[Tensor, Tensor]:
        """Task `task`'s (mean, variance), each of one value per input feature."""
        if task not in self:
            raise KeyError(f"task {task} has no input statistics")
        return self.mean[task], self.variance[task]

    @torch.no_grad()
    def __setitem__(self, task: int, statistics: tuple[Tensor, Tensor]) -> None:
        """Set task `task`'s (mean, variance), replacing what was recorded for it."""
        mean, variance = (s.flatten().float() for s in statistics)
        features = self.mean.shape[1] if len(self.recorded) else len(mean)
        if len(mean) != features or len(variance) != features:
            raise ValueError(
                f"task {task}'s inputs have {len(mean)} features, the tasks recorded before "
                f"had {features}"
            )
        self._grow(task + 1, features)
        self.mean[task] = mean.to(self.mean.device)
        self.variance[task] = variance.to(self.variance.device)
        self.recorded[task] = 1

    def __delitem__(self, task: int) -> None:
        if task in self:
            self.recorded[task] = 0

    def missing(self, tasks: int) -> list[int]:
        """Which of tasks 0..tasks-1 have no statistics."""
        return [task for task in range(tasks) if task not in self]

    @torch.no_grad()
    def record(self, task: int, batches: Iterable[Tensor]) -> None:
        """Keep the mean and variance of every input feature over task `task`'s training
        inputs (two numbers per input feature; recording again replaces them)."""
        count, total, squares = 0, None, None
        for batch in batches:
            flat = batch.flatten(1).double()
            count += len(flat)
            total = flat.sum(0) if total is None else total + flat.sum(0)
            squares = (flat**2).sum(0) if squares is None else squares + (flat**2).sum(0)
        if count == 0:
            raise ValueError(f"no inputs given to record for task {task}")
        mean = total / count
        variance = (squares / count - mean**2).clamp_min(0)
        self[task] = (mean.float().cpu(), variance.float().cpu())

    def _grow(self, tasks: int, features: int) -> None:
        """Room for tasks 0..tasks-1 of `features` features (new rows zero, not recorded)."""
        rows = len(self.recorded)
        if rows >= tasks and self.mean.shape[1] == features:
            return
        grown = max(rows, tasks)
        for name in ("mean", "variance"):
            old = getattr(self, name)
            new = old.new_zeros(grown, features)
            if rows:
                new[:rows] = old
            setattr(self, name, new)
        recorded = self.recorded.new_zeros(grown)
        recorded[:rows] = self.recorded
        self.recorded = recorded

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # The saved network recorded some number of tasks: take its shapes before loading.
        saved = state_dict.get(prefix + "mean")
        if saved is not None and saved.shape != self.mean.shape:
            self.mean = self.mean.new_zeros(saved.shape)
            self.variance = self.variance.new_zeros(saved.shape)
            self.recorded = self.recorded.new_zeros(saved.shape[0])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
