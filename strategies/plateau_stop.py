"""Avalanche plugin: stop each experience's training once its validation loss stops improving."""

from __future__ import annotations

from avalanche.core import SupervisedPlugin

from clearn.budget import EpochAction, TaskBudget
from clearn.defaults import DEFAULT_PATIENCE, DEFAULT_VALIDATION_SHARE
from strategies.experience import task_label
from strategies.validation import ValidationData

__all__ = ["PlateauStopPlugin", "stop_after_this_epoch"]


def stop_after_this_epoch(strategy) -> None:
    """Ask Avalanche to end the experience's training after the current epoch.

    Avalanche keeps the flag until its next epoch starts: it is never set on the last epoch,
    or the next experience would stop before it trained.
    """
    if strategy.clock.train_exp_epochs + 1 < strategy.train_epochs:
        strategy.stop_training()


class PlateauStopPlugin(SupervisedPlugin):
    """The same training budget as the packing strategies, for any multi-task model.

    After every epoch the model is scored on the experience's validation data (the
    experience of `valid_stream` with the same task label; without a stream, a seeded
    `validation_share` held out of the training experience); training stops once the loss has
    not improved for `patience` epochs (and MIN_PATIENCE_STEPS steps), `train_epochs` being
    the cap. `under_trained` lists the tasks that the cap stopped while still improving.
    """

    def __init__(
        self,
        valid_stream=None,
        *,
        patience: int = DEFAULT_PATIENCE,
        validation_share: float = DEFAULT_VALIDATION_SHARE,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.validation = ValidationData(valid_stream, share=validation_share, seed=seed)
        self.patience = patience
        self.epochs_trained: dict[int, int] = {}
        self.under_trained: list[int] = []
        self._budget: TaskBudget | None = None

    def state_dict(self) -> dict:
        """Epochs each task trained and the under-trained tasks, for a checkpoint."""
        return {
            "epochs_trained": dict(self.epochs_trained),
            "under_trained": list(self.under_trained),
        }

    def load_state_dict(self, state: dict) -> None:
        self.epochs_trained = dict(state["epochs_trained"])
        self.under_trained = list(state["under_trained"])

    def after_train_dataset_adaptation(self, strategy, **kwargs) -> None:
        self.validation.hold_out(strategy)

    def before_training_exp(self, strategy, **kwargs) -> None:
        self._budget = TaskBudget(max_epochs=strategy.train_epochs, patience=self.patience)

    def after_training_epoch(self, strategy, **kwargs) -> None:
        task = task_label(strategy.experience)
        score = self.validation.score(
            strategy.model, task, batch_size=strategy.eval_mb_size, device=strategy.device
        )
        action = self._budget.after_epoch(
            -score.loss, steps=strategy.clock.train_epoch_iterations
        )
        if action is EpochAction.STOP:
            stop_after_this_epoch(strategy)

    def after_training_exp(self, strategy, **kwargs) -> None:
        task = task_label(strategy.experience)
        self.epochs_trained[task] = self._budget.packed_after or strategy.train_epochs
        if self._budget.under_trained:
            self.under_trained.append(task)
