"""A backbone with one output head per task, for Avalanche's baseline strategies."""

from __future__ import annotations

from collections.abc import Sequence

from avalanche.models import MultiTaskModule
from torch import Tensor, nn

__all__ = ["MultiHeadNet"]


class MultiHeadNet(MultiTaskModule):
    """backbone → head[task]; the baselines get the same per-task heads as the packing network.

    Avalanche's MultiHeadClassifier grows heads from the experience's classes, which fails
    with the new benchmark API's set-typed classes unless masking is off; fixed heads, one per
    task, sized from the stream, sidestep that.
    """

    def __init__(self, *, backbone: nn.Module, feature_size: int, classes_per_task: Sequence[int]):
        super().__init__()
        self.backbone = backbone
        self.heads = nn.ModuleList(nn.Linear(feature_size, c) for c in classes_per_task)

    def forward_single_task(self, x: Tensor, task_label: int) -> Tensor:
        return self.heads[task_label](self.backbone(x))

    def forward(self, x: Tensor, task_labels: Tensor | int | None) -> Tensor | dict[int, Tensor]:
        if task_labels is None:  # every head's logits, by task: what Avalanche's LwF asks for
            features = self.backbone(x)
            return {task: head(features) for task, head in enumerate(self.heads)}
        if isinstance(task_labels, int):
            return self.forward_single_task(x, task_labels)
        tasks = task_labels.unique().tolist()
        if len(tasks) == 1:
            return self.forward_single_task(x, tasks[0])
        width = max(self.heads[t].out_features for t in tasks)
        logits = x.new_zeros(len(x), width)
        for task in tasks:
            rows = task_labels == task
            part = self.forward_single_task(x[rows], task)
            logits[rows, : part.shape[1]] = part
        return logits
