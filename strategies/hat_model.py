"""clearn's HatNetwork as Avalanche's multi-task model: one object, growing a head per task."""

from __future__ import annotations

from avalanche.models import MultiTaskModule
from torch import Tensor

from clearn.hat_network import HatNetwork as _CoreHatNetwork
from strategies.experience import class_count, task_label

__all__ = ["HatNetwork"]


class HatNetwork(_CoreHatNetwork, MultiTaskModule):
    """`HatNetwork(backbone=...)`: HAT's unit gates on the backbone, a head per task label.

    Avalanche adapts it before each experience: a new task label gets its head (and its
    embeddings), sized from the experience's classes, the backbone's output width measured
    on the experience's first example. Task labels arrive in order 0, 1, 2, …; tasks with a
    head but not trained yet are answered by their untrained head and gates.
    """

    def adaptation(self, experience) -> None:
        task = task_label(experience)
        classes = class_count(experience)
        if task < self.n_tasks:
            width = self.heads[task].out_features
            if classes > width:
                raise ValueError(
                    f"task {task} has class labels up to {classes - 1}, its head has {width} "
                    f"outputs: a task's classes must all come in its first experience"
                )
            return
        if task > self.n_tasks:
            raise ValueError(
                f"task labels must arrive in order 0, 1, 2, …: got task {task} while the "
                f"network has heads for tasks 0..{self.n_tasks - 1}"
            )
        example = experience.dataset[0][0].unsqueeze(0).to(self._adaptation_device)
        self.add_head(classes, example=example)

    def forward(self, x: Tensor, task_labels: Tensor | int) -> Tensor:
        return super().forward(x, task_labels, allow_untrained=True)

    def forward_single_task(self, x: Tensor, task_label: int) -> Tensor:
        return self.forward_task(x, task_label, allow_untrained=True)
