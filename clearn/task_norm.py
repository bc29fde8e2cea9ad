"""Per-task normalisation: each task its own BatchNorm statistics and affine parameters.

A backbone's BatchNorm layers are swapped for TaskBatchNorm, which holds one BatchNorm per
task (a few hundred numbers each) and uses the one of the task being answered, so a BatchNorm
backbone serves every task with that task's statistics instead of the first task's.
"""

from __future__ import annotations

import copy

from torch import Tensor, nn

__all__ = ["NORM_TYPES", "TaskBatchNorm", "add_task_norms"]

NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


class TaskBatchNorm(nn.Module):
    """One BatchNorm per task; `view_task` picks the one a forward pass uses."""

    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.norms = nn.ModuleList([norm])
        """The BatchNorm of each task, in task order (grown by `ensure`)."""
        self.view_task = 0
        """Task whose BatchNorm answers (set through the network's `viewing`)."""

    def ensure(self, tasks: int) -> None:
        """Hold a BatchNorm for tasks 0..tasks-1 (new ones copy the last)."""
        while len(self.norms) < tasks:
            self.norms.append(copy.deepcopy(self.norms[-1]))

    def start(self, task: int) -> None:
        """Before task `task` trains: start its BatchNorm from the previous task's."""
        if task > 0:
            self.norms[task].load_state_dict(self.norms[task - 1].state_dict())

    def forward(self, x: Tensor) -> Tensor:
        return self.norms[self.view_task](x)


def add_task_norms(backbone: nn.Module) -> dict[str, TaskBatchNorm]:
    """Swap every BatchNorm of `backbone` for a TaskBatchNorm; return them by layer name."""
    swapped = {}
    for name, module in list(backbone.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, NORM_TYPES):
                task_norm = TaskBatchNorm(child)
                setattr(module, child_name, task_norm)
                swapped[f"{name}.{child_name}" if name else child_name] = task_norm
    return swapped
