"""A TaskNetwork seen by Avalanche as a multi-task model, so strategies pass task labels."""

from __future__ import annotations

from avalanche.models import MultiTaskModule
from torch import Tensor

from clearn.network import TaskNetwork

__all__ = ["AvalancheTaskNetwork"]


class AvalancheTaskNetwork(MultiTaskModule):
    """Wraps a TaskNetwork; Avalanche calls `model(x, task_labels)` on MultiTaskModules only."""

    def __init__(self, network: TaskNetwork) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: Tensor, task_labels: Tensor | int) -> Tensor:
        return self.network(x, task_labels)

    def forward_single_task(self, x: Tensor, task_label: int) -> Tensor:
        return self.network.forward_task(x, task_label)
