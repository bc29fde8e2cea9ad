"""Avalanche plugin that feeds a strategy whole tensor batches instead of per-example loading."""

from __future__ import annotations

import torch
from avalanche.core import SupervisedPlugin
from torch.utils.data import DataLoader

from scenarios.streams import split_of
from scenarios.tasks import TaskSplit, TensorBatchLoader
from strategies.avalanche_compat import stored_examples, stores_plain_examples
from strategies.distributed import process_rank

__all__ = ["TensorLoaderPlugin", "gathered_split"]


def gathered_split(dataset) -> TaskSplit | None:
    """An Avalanche dataset's examples gathered once into one TaskSplit, when it serves
    them as stored (`stores_plain_examples`), as float32 inputs of one task; else None.

    The gathering reads the stored tensors at once where the leaves are TensorDatasets
    (`stored_examples`), else every example once through Avalanche's own `__getitem__` and
    collate; the split then serves each batch with one indexing operation, the same values
    Avalanche's loader would give.
    """
    if len(dataset) == 0 or not stores_plain_examples(dataset):
        return None
    batch = stored_examples(dataset)
    if batch is None:
        collate = getattr(dataset, "collate_fn", None)
        batch = next(iter(DataLoader(dataset, batch_size=len(dataset), collate_fn=collate)))
    if len(batch) < 3 or not isinstance(batch[0], torch.Tensor):
        return None
    inputs, labels, tasks = batch[0], batch[1], batch[2]
    if inputs.dtype != torch.float32 or not bool((tasks == tasks[0]).all()):
        return None
    return TaskSplit(
        images=inputs,
        rows=torch.arange(len(inputs)),
        labels=labels,
        task_label=int(tasks[0]),
        pixel_max=1.0,
    )


class TensorLoaderPlugin(SupervisedPlugin):
    """Replaces the strategy's dataloader by a TensorBatchLoader.

    Avalanche builds its own dataloader just before `before_training_exp` and
    `before_eval_exp`; this plugin swaps it there, keeping the strategy's minibatch sizes.
    Streams built by `scenarios` are served from their tensors directly; experiences of
    Avalanche's own benchmarks built from tensors without transforms (`nc_benchmark`,
    `benchmark_from_datasets`, … over TensorDatasets) are gathered once per experience
    (`gathered_split`: training data as any plugin adapted it, a validation share held
    out, say; evaluation data once per experience object, kept for later evaluations).
    Other experiences (transforms, several tasks, non-tensor data) keep Avalanche's loader,
    and so does training data of a `scenarios` stream that a plugin changed.
    In a torch.distributed group each process trains on its part of every batch (the
    strategy's minibatch size is the batch of all processes together); evaluation is not
    split.
    """

    def __init__(self) -> None:
        super().__init__()
        self._evaluated: dict[int, tuple[object, TaskSplit | None]] = {}
        """Gathered evaluation data by experience dataset (kept alive beside its split)."""

    def before_training_exp(self, strategy, **kwargs) -> None:
        split = split_of(strategy.experience.dataset)
        if split is None:
            split = gathered_split(strategy.adapted_dataset)
        elif len(strategy.adapted_dataset) != len(split):
            split = None  # a plugin changed the data of a stream built by `scenarios`
        if split is not None:
            strategy.dataloader = TensorBatchLoader(
                split, batch_size=strategy.train_mb_size, shuffle=True, shard=process_rank()
            )

    def before_eval_exp(self, strategy, **kwargs) -> None:
        split = split_of(strategy.experience.dataset)
        if split is None:
            split = self._evaluation_split(strategy)
        if split is not None:
            strategy.dataloader = TensorBatchLoader(
                split, batch_size=strategy.eval_mb_size, shuffle=False
            )

    def _evaluation_split(self, strategy) -> TaskSplit | None:
        key = id(strategy.experience.dataset)
        if key not in self._evaluated:
            split = gathered_split(strategy.adapted_dataset)
            self._evaluated[key] = (strategy.experience.dataset, split)
        return self._evaluated[key][1]
