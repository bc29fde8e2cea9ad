"""Each task's validation data, found once in a validation stream by task label."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

from clearn.evaluation import TaskScore, task_score
from scenarios.streams import split_of
from scenarios.tasks import TensorBatchLoader

__all__ = ["ValidationData", "dataset_batches"]


def dataset_batches(dataset, batch_size: int):
    """Unshuffled minibatches of an experience's dataset: whole-tensor batches for the
    streams built here, Avalanche's eval view through a DataLoader for any other."""
    split = split_of(dataset)
    if split is not None:
        return TensorBatchLoader(split, batch_size=batch_size, shuffle=False)
    return DataLoader(dataset.eval(), batch_size=batch_size)


class ValidationData:
    """The experiences of a validation stream, looked up by task label."""

    def __init__(self, valid_stream) -> None:
        self.stream = valid_stream
        self._experiences: dict[int, object] = {}

    def batches(self, task: int, batch_size: int):
        """Minibatches of task `task`'s validation data (tensor batches where possible)."""
        if task not in self._experiences:
            # One pass over the stream, not one per call: Avalanche builds each experience
            # object anew, so a scan per call grows with the number of tasks.
            self._experiences = {e.task_label: e for e in self.stream}
        if task not in self._experiences:
            raise ValueError(f"the validation stream has no experience with task label {task}")
        return dataset_batches(self._experiences[task].dataset, batch_size)

    def score(
        self, model: nn.Module, task: int, *, batch_size: int, device: torch.device | str
    ) -> TaskScore:
        """Accuracy and loss of `model(x, task)` on task `task`'s validation data."""
        return task_score(model, self.batches(task, batch_size), task, device)
