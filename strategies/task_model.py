"""A TaskNetwork seen by Avalanche as a multi-task model, so strategies pass task labels."""

from __future__ import annotations

from avalanche.models import MultiTaskModule
from torch import Tensor

from clearn.network import TaskNetwork

__all__ = ["AvalancheTaskNetwork"]


class AvalancheTaskNetwork(MultiTaskModule):
    """Wraps a TaskNetwork; Avalanche calls `model(x, task_labels)` on MultiTaskModules only.

    Avalanche evaluates tasks before they are trained (the evaluation before training,
    forward-transfer metrics, whole-stream evaluation), so tasks with a head but not yet
    trained are answered here, at chance level, instead of raising as the TaskNetwork does.
    """

    def __init__(self, network: TaskNetwork) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: Tensor, task_labels: Tensor | int) -> Tensor:
        return self.network(x, task_labels, allow_untrained=True)

    def forward_single_task(self, x: Tensor, task_label: int) -> Tensor:
        return self.network.forward_task(x, task_label, allow_untrained=True)
