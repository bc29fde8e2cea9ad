"""Plugins that watch training: a progress bar per epoch, and a stop on a non-finite loss."""

from __future__ import annotations

import math

from avalanche.core import SupervisedPlugin
from tqdm.auto import tqdm

__all__ = ["FiniteLossPlugin", "NonFiniteLossError", "ProgressPlugin"]


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


class FiniteLossPlugin(SupervisedPlugin):
    """Stops training with NonFiniteLossError as soon as the loss is NaN or infinite."""

    def before_backward(self, strategy, **kwargs) -> None:
        value = float(strategy.loss.detach())
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"the training loss became {value} in task {strategy.experience.task_label}, "
                f"epoch {strategy.clock.train_exp_epochs + 1}; lower the learning rate"
            )


class ProgressPlugin(SupervisedPlugin):
    """A tqdm bar over the minibatches of each training epoch (none drawn with `hidden`: every
    process of a distributed run holds the same plugins, one of them draws)."""

    def __init__(self, *, hidden: bool = False) -> None:
        super().__init__()
        self.hidden = hidden
        self._bar: tqdm | None = None

    def before_training_epoch(self, strategy, **kwargs) -> None:
        self._close()  # an epoch that stopped early (early stopping) left its bar open
        if self.hidden:
            return
        task = strategy.experience.task_label
        epoch = strategy.clock.train_exp_epochs + 1
        try:
            total = len(strategy.dataloader)
        except TypeError:
            total = None
        self._bar = tqdm(
            total=total,
            desc=f"task {task} epoch {epoch}/{strategy.train_epochs}",
            unit="batch",
            leave=False,
            mininterval=0.5,
        )

    def after_training_iteration(self, strategy, **kwargs) -> None:
        if self._bar is not None:
            self._bar.update()

    def after_training_epoch(self, strategy, **kwargs) -> None:
        self._close()

    def after_training_exp(self, strategy, **kwargs) -> None:
        self._close()

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
