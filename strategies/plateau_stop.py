"""Avalanche plugin: each task's epoch budget, training stopped once its validation loss stops
improving (`clearn.budget.TaskBudget`)."""

from __future__ import annotations

import time

from avalanche.core import SupervisedPlugin
from torch import nn

from clearn.budget import EpochAction, TaskBudget
from clearn.defaults import DEFAULT_PATIENCE
from strategies.experience import task_label
from strategies.validation import ValidationData

__all__ = ["PlateauBudgetPlugin", "stop_after_this_epoch"]


def stop_after_this_epoch(strategy) -> None:
    """Ask Avalanche to end the experience's training after the current epoch.

    Avalanche keeps the flag until its next epoch starts: it is never set on the last epoch,
    or the next experience would stop before it trained.
    """
    if strategy.clock.train_exp_epochs + 1 < strategy.train_epochs:
        strategy.stop_training()


class PlateauBudgetPlugin(SupervisedPlugin):
    """The training budget of every strategy that stops on a plateau, packing or not.

    After every epoch the model is scored on the task's validation data (`validation`, a
    `ValidationSplitPlugin`'s `data`); training stops once the loss has not improved for
    `patience` epochs (and MIN_PATIENCE_STEPS steps), the strategy's `train_epochs` being the
    cap, `patience=None` training every epoch. `retrain_epochs` of the cap are left after
    the task is packed (`action` is then PACK, for `PackingPlugin`, placed after this
    plugin); they are not validated. `under_trained` lists the tasks that the cap stopped
    while still improving.
    """

    def __init__(
        self,
        validation: ValidationData,
        *,
        patience: int | None = DEFAULT_PATIENCE,
        retrain_epochs: int = 0,
    ) -> None:
        super().__init__()
        self.validation = validation
        self.patience = patience
        self.retrain_epochs = retrain_epochs
        self.model: nn.Module | None = None
        """The model validated: None for the strategy's (the packing plugin sets its network)."""
        self.validates = True
        """Whether this task's epochs are validated (False for a task on frozen features)."""
        self.budget: TaskBudget | None = None
        """The current task's budget."""
        self.action = EpochAction.CONTINUE
        """What the budget said after the last epoch."""
        self.val_accuracies: list[float] = []
        """Validation accuracy after each of the current task's validated epochs."""
        self.validation_seconds = 0.0
        """Time the current task spent validating."""
        self.epochs_trained: dict[int, int] = {}
        self.under_trained: list[int] = []

    def state_dict(self) -> dict:
        """Epochs each task trained and the under-trained tasks, for a checkpoint."""
        return {
            "epochs_trained": dict(self.epochs_trained),
            "under_trained": list(self.under_trained),
        }

    def load_state_dict(self, state: dict) -> None:
        self.epochs_trained = dict(state["epochs_trained"])
        self.under_trained = list(state["under_trained"])

    def before_training_exp(self, strategy, **kwargs) -> None:
        self.budget = TaskBudget(
            max_epochs=strategy.train_epochs,
            retrain_epochs=self.retrain_epochs,
            patience=self.patience,
        )
        self.validates = True
        self.action = EpochAction.CONTINUE
        self.val_accuracies = []
        self.validation_seconds = 0.0

    def after_training_epoch(self, strategy, **kwargs) -> None:
        score = None
        if self.validates and self.budget.packed_after is None:
            began = time.perf_counter()
            validation = self.validation.score(
                strategy.model if self.model is None else self.model,
                task_label(strategy.experience),
                batch_size=strategy.eval_mb_size,
                device=strategy.device,
            )
            self.validation_seconds += time.perf_counter() - began
            score = -validation.loss
            self.val_accuracies.append(validation.accuracy)
        self.action = self.budget.after_epoch(
            score, steps=strategy.clock.train_epoch_iterations
        )
        if self.action is EpochAction.STOP:
            stop_after_this_epoch(strategy)

    def after_training_exp(self, strategy, **kwargs) -> None:
        task = task_label(strategy.experience)
        self.epochs_trained[task] = self.budget.packed_after or strategy.train_epochs
        if self.budget.under_trained:
            self.under_trained.append(task)
