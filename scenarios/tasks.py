"""One task's examples as views on shared uint8 tensors, turned into inputs a batch at a time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import torch
from torch import Tensor
from torch.utils.data import Dataset

__all__ = ["TaskSplit", "TaskSplitDataset", "TensorBatchLoader"]


@dataclass(frozen=True, eq=False)
class TaskSplit:
    """The examples of one task in one split (train, valid or test), without copying images.

    Inputs are `images[rows] / pixel_max`, flattened, with pixels reordered by `permutation`
    when one is set, then shaped back to C×H×W. Many tasks share the same `images`.
    """

    images: Tensor
    """uint8 N×C×H×W, shared by every task built from the same data."""
    rows: Tensor
    """int64 indices into `images` of this split's examples."""
    labels: Tensor
    """int64 labels of those examples, remapped to 0..classes-1 of this task."""
    task_label: int
    pixel_max: float
    permutation: Tensor | None = None
    """Pixel order of a permuted task (over the flattened image), or None."""

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def classes(self) -> int:
        """Number of classes of this task."""
        return int(self.labels.max()) + 1 if len(self.labels) else 0

    def sample(self, count: int, *, seed: int) -> TaskSplit:
        """At most `count` of this split's examples, drawn without replacement by `seed`, in
        their order here (all of them, as they are, when there are no more than `count`)."""
        if count < 1:
            raise ValueError(f"a sample needs at least one example, got {count}")
        if len(self) <= count:
            return self
        generator = torch.Generator().manual_seed(seed)
        chosen = torch.randperm(len(self), generator=generator)[:count].sort().values
        return replace(self, rows=self.rows[chosen], labels=self.labels[chosen])

    def inputs(self, positions: Tensor) -> Tensor:
        """Float inputs of the examples at `positions` (indices into this split), as one batch."""
        batch = self.images[self.rows[positions]].float().div_(self.pixel_max)
        if self.permutation is None:
            return batch
        # torch.gather with the permutation as an index per row: on CPU 7–9× faster than
        # indexing the columns (batch[:, permutation]), and the same copy.
        flat = batch.flatten(1)
        order = self.permutation.expand(len(flat), -1)
        return torch.gather(flat, 1, order).view(batch.shape)


class TaskSplitDataset(Dataset):
    """Per-example access to a TaskSplit, for Avalanche's datasets and plain DataLoaders."""

    def __init__(self, split: TaskSplit) -> None:
        self.split = split
        self.targets: Tensor = split.labels
        """Labels, read by Avalanche as the dataset's `targets`."""

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        position = torch.tensor([index])
        return self.split.inputs(position)[0], int(self.split.labels[index])


class TensorBatchLoader:
    """Yields `[inputs, labels, task_labels]` minibatches of a TaskSplit, built whole.

    Written by hand because a DataLoader calls `__getitem__` and collates once per example,
    which is what makes per-example pipelines several times slower than the training step on
    MNIST-sized data; this gathers each batch with one indexing operation. Shuffling draws
    from torch's global generator, so seeding torch makes the order reproducible.

    `shard=(rank, processes)` (data-parallel training, every process drawing the same
    order): each batch of `batch_size` is cut into `processes` near-equal parts and this
    process gets part `rank`; a last batch with fewer examples than processes is dropped.
    """

    def __init__(
        self,
        split: TaskSplit,
        *,
        batch_size: int,
        shuffle: bool,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        rank, processes = shard
        if not 0 <= rank < processes or batch_size < processes:
            raise ValueError(
                f"shard (rank {rank} of {processes} processes) needs 0 <= rank < processes "
                f"<= batch_size ({batch_size})"
            )
        self.split = split
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.shard = shard

    def __len__(self) -> int:
        count, processes = len(self.split), self.shard[1]
        full, last = divmod(count, self.batch_size)
        return full + (last >= processes)

    def __iter__(self) -> Iterator[list[Tensor]]:
        count = len(self.split)
        rank, processes = self.shard
        order = torch.randperm(count) if self.shuffle else torch.arange(count)
        for start in range(0, count, self.batch_size):
            positions = order[start : start + self.batch_size]
            if processes > 1:
                if len(positions) < processes:
                    break
                positions = torch.tensor_split(positions, processes)[rank]
            yield [
                self.split.inputs(positions),
                self.split.labels[positions],
                torch.full((len(positions),), self.split.task_label, dtype=torch.long),
            ]
