"""Each task's validation data: a validation stream's experience, or a share held out."""

from __future__ import annotations

import dataclasses
import logging

import torch
from torch import nn
from torch.utils.data import DataLoader

from clearn.defaults import DEFAULT_VALIDATION_SHARE
from clearn.evaluation import TaskScore, task_score
from scenarios.holdout import held_out_mask
from scenarios.streams import split_of
from scenarios.tasks import TensorBatchLoader
from strategies.experience import task_label
from strategies.tensor_loader import gathered_split

__all__ = ["ValidationData", "dataset_batches", "sample_batches"]

logger = logging.getLogger(__name__)


def dataset_batches(dataset, batch_size: int):
    """Unshuffled minibatches of an experience's dataset: whole-tensor batches for the
    streams built here and for Avalanche datasets whose eval view serves its examples as
    stored (gathered once, `gathered_split`), Avalanche's eval view through a DataLoader for
    any other. Iterate the result as often as needed: the gathering is not repeated."""
    split = split_of(dataset)
    if split is None:
        split = gathered_split(dataset.eval())
    if split is not None:
        return TensorBatchLoader(split, batch_size=batch_size, shuffle=False)
    return DataLoader(dataset.eval(), batch_size=batch_size)


def sample_batches(dataset, batch_size: int, *, examples: int, seed: int):
    """`dataset_batches` of a fixed random sample of `examples` of the dataset's examples
    (all of them where it has no more), in the dataset's order; the same for the same seed."""
    count = len(dataset)
    if count <= examples:
        return dataset_batches(dataset, batch_size)
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(count, generator=generator)[:examples].sort().values
    split = split_of(dataset)
    if split is not None:
        sample = dataclasses.replace(split, rows=split.rows[chosen], labels=split.labels[chosen])
        return TensorBatchLoader(sample, batch_size=batch_size, shuffle=False)
    return dataset_batches(dataset.subset(chosen.tolist()), batch_size)


class ValidationData:
    """Validation data by task label: the experience of `valid_stream` with that label, or,
    without a stream, a seeded `share` of the task's training experience held out of training
    (`hold_out`), so that stock Avalanche benchmarks work as they are."""

    def __init__(
        self, valid_stream=None, *, share: float = DEFAULT_VALIDATION_SHARE, seed: int = 0
    ) -> None:
        if not 0.0 < share < 1.0:
            raise ValueError(f"the validation share must be in (0, 1), got {share}")
        self.stream = valid_stream
        self.share = share
        self.seed = seed
        self._experiences: dict[int, object] = {}
        self._held_out: dict[int, object] = {}
        """Each task's held-out validation dataset, when there is no stream."""
        self._batches: tuple[tuple[int, int], object] | None = None
        """The last (task, batch size) asked for and its batches: a task is validated many
        times in a row (each epoch, each step of the search); its examples are gathered once."""

    def hold_out(self, strategy) -> None:
        """Without a stream: move a seeded share of the experience's training data, about to
        be trained (`strategy.adapted_dataset`), into validation. Call once the strategy has
        adapted its training dataset. With a stream, nothing changes."""
        if self.stream is not None:
            return
        task = task_label(strategy.experience)
        dataset = strategy.adapted_dataset
        count = round(self.share * len(dataset))
        if not 0 < count < len(dataset):
            raise ValueError(
                f"task {task} has {len(dataset)} training examples: too few to hold out a "
                f"{self.share:.0%} validation share; pass a valid_stream or another share"
            )
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + task)
        order = torch.randperm(len(dataset), generator=generator)
        targets = getattr(dataset, "targets", None)
        labels = torch.zeros(len(dataset), dtype=torch.long) if targets is None else (
            torch.as_tensor(list(targets), dtype=torch.long)
        )  # fmt: skip
        held = held_out_mask(order, labels, count)
        if not held.any():
            raise ValueError(
                f"task {task}: each class has a single training example, so none can be held "
                f"out for validation without leaving its class untrained; pass a valid_stream"
            )
        if not self._held_out:
            logger.warning(
                f"validation: no valid_stream given, so each task validates on a seeded "
                f"{self.share:.0%} of its training experience (seed {self.seed}), held out "
                f"of training"
            )
        self._held_out[task] = dataset.subset(order[held].tolist())
        strategy.adapted_dataset = dataset.subset(order[~held].tolist())

    def size(self, task: int) -> int:
        """Number of validation examples of task `task`."""
        return len(self._dataset(task))

    def _dataset(self, task: int):
        if self.stream is None:
            if task not in self._held_out:
                raise ValueError(f"no validation data held out for task {task} yet")
            return self._held_out[task]
        if task not in self._experiences:
            # One pass over the stream, not one per call: Avalanche builds each experience
            # object anew, so a scan per call grows with the number of tasks.
            self._experiences = {task_label(e): e for e in self.stream}
        if task not in self._experiences:
            raise ValueError(f"the validation stream has no experience with task label {task}")
        return self._experiences[task].dataset

    def batches(self, task: int, batch_size: int):
        """Minibatches of task `task`'s validation data (tensor batches where possible)."""
        key = (task, batch_size)
        if self._batches is None or self._batches[0] != key:
            self._batches = (key, dataset_batches(self._dataset(task), batch_size))
        return self._batches[1]

    def score(
        self, model: nn.Module, task: int, *, batch_size: int, device: torch.device | str
    ) -> TaskScore:
        """Accuracy and loss of `model(x, task)` on task `task`'s validation data."""
        return task_score(model, self.batches(task, batch_size), task, device)
