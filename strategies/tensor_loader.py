"""Avalanche plugin that feeds a strategy whole tensor batches instead of per-example loading."""

from __future__ import annotations

from avalanche.core import SupervisedPlugin

from scenarios.streams import split_of
from scenarios.tasks import TensorBatchLoader
from strategies.distributed import process_rank

__all__ = ["TensorLoaderPlugin"]


class TensorLoaderPlugin(SupervisedPlugin):
    """Replaces the strategy's dataloader by a TensorBatchLoader for streams built by scenarios.

    Avalanche builds its own dataloader just before `before_training_exp` and
    `before_eval_exp`; this plugin swaps it there, keeping the strategy's minibatch sizes.
    Experiences from other benchmarks keep Avalanche's loader, and so does training data
    that a plugin changed (a validation share held out of it, replayed examples added).
    In a torch.distributed group each process trains on its part of every batch (the
    strategy's minibatch size is the batch of all processes together); evaluation is not
    split.
    """

    def before_training_exp(self, strategy, **kwargs) -> None:
        split = split_of(strategy.experience.dataset)
        if split is not None and len(strategy.adapted_dataset) == len(split):
            strategy.dataloader = TensorBatchLoader(
                split, batch_size=strategy.train_mb_size, shuffle=True, shard=process_rank()
            )

    def before_eval_exp(self, strategy, **kwargs) -> None:
        split = split_of(strategy.experience.dataset)
        if split is not None:
            strategy.dataloader = TensorBatchLoader(
                split, batch_size=strategy.eval_mb_size, shuffle=False
            )
