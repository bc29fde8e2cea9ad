"""Avalanche plugin that feeds a strategy whole tensor batches instead of per-example loading."""

from __future__ import annotations

from avalanche.core import SupervisedPlugin

from scenarios.streams import split_of
from scenarios.tasks import TensorBatchLoader

__all__ = ["TensorLoaderPlugin"]


class TensorLoaderPlugin(SupervisedPlugin):
    """Replaces the strategy's dataloader by a TensorBatchLoader for streams built by scenarios.

    Avalanche builds its own dataloader just before `before_training_exp` and
    `before_eval_exp`; this plugin swaps it there, keeping the strategy's minibatch sizes.
    Experiences from other benchmarks keep Avalanche's loader, and so does training data
    that a plugin changed (a validation share held out of it, replayed examples added).
    """

    def before_training_exp(self, strategy, **kwargs) -> None:
        split = split_of(strategy.experience.dataset)
        if split is not None and len(strategy.adapted_dataset) == len(split):
            strategy.dataloader = TensorBatchLoader(
                split, batch_size=strategy.train_mb_size, shuffle=True
            )

    def before_eval_exp(self, strategy, **kwargs) -> None:
        split = split_of(strategy.experience.dataset)
        if split is not None:
            strategy.dataloader = TensorBatchLoader(
                split, batch_size=strategy.eval_mb_size, shuffle=False
            )
