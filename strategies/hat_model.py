"""clearn's HatNetwork as Avalanche's multi-task model: one object, growing a head per task."""

from __future__ import annotations

from avalanche.models import MultiTaskModule
from torch import Tensor

from clearn.hat_network import HatNetwork as _CoreHatNetwork
from strategies.task_model import adapt_heads

__all__ = ["HatNetwork"]


class HatNetwork(_CoreHatNetwork, MultiTaskModule):
    """`HatNetwork(backbone=...)`: HAT's unit gates on the backbone, a head per task label.

    Avalanche adapts it before each experience: a new task label gets its head (and its
    embeddings), sized from the experience's classes, the backbone's output width measured
    on the experience's first example. Task labels arrive in order 0, 1, 2, …; tasks with a
    head but not trained yet are answered by their untrained head and gates.
    """

    def adaptation(self, experience) -> None:
        adapt_heads(self, experience)

    def forward(self, x: Tensor, task_labels: Tensor | int) -> Tensor:
        return super().forward(x, task_labels, allow_untrained=True)

    def forward_single_task(self, x: Tensor, task_label: int) -> Tensor:
        return self.forward_task(x, task_label, allow_untrained=True)
