"""Where a packing run's training time went: the epochs that reached each task's final
validation accuracy, the epochs after them (the plateau stop's patience), validation, the
pruning search and the fit of the task's input model. Read from a run's results (its task
reports), so that any finished run can be broken down after the fact.
"""

from __future__ import annotations

from dataclasses import dataclass

from clearn.app.results import RunResult

__all__ = ["REACHED_WITHIN", "TimeSpent", "time_spent"]

REACHED_WITHIN = 0.005
"""A task has reached its final validation accuracy at the first epoch within this much of
it (half a point): closer than that is noise on a validation set of a few hundred examples."""


@dataclass(frozen=True)
class TimeSpent:
    """Seconds of a run's training, summed over its tasks."""

    train: float
    """Everything `strategy.train` took (training, validation, search, retraining)."""
    to_final_accuracy: float
    """What the run would have taken had each task stopped at the first epoch that reached
    its final validation accuracy (per-epoch time taken as the task's mean)."""
    validation: float
    """Validating after each training epoch (the plateau stop's signal)."""
    search: float
    """The kept-fraction search, its guard, pruning and the retraining check."""
    input_model: float = 0.0
    """Fitting each task's model of its training inputs (for task inference)."""
    epochs: int = 0
    """Epochs over all tasks, the retraining epochs after pruning included."""

    @property
    def per_epoch(self) -> float:
        """Seconds per epoch: the train time less the search and the input-model fits,
        validation included (it follows every epoch), over the epochs."""
        return (self.train - self.search - self.input_model) / max(self.epochs, 1)

    @property
    def after_final_accuracy(self) -> float:
        """Training after each task had reached its final validation accuracy."""
        return self.train - self.to_final_accuracy


def time_spent(result: RunResult, *, reached_within: float = REACHED_WITHIN) -> TimeSpent | None:
    """The breakdown of `result`'s training time; None for a run without task reports (a
    strategy that does not pack) or whose reports lack per-epoch validation accuracy."""
    reports = result.task_reports
    if not reports or len(reports) != len(result.train_seconds_per_task):
        return None
    retrain_epochs = int(result.config.get("retrain_epochs") or 0)
    needed = validation = search = input_model = 0.0
    all_epochs = 0
    for report, seconds in zip(reports, result.train_seconds_per_task, strict=True):
        accuracies = report.get("val_acc_per_epoch") or ()
        epochs = report.get("epochs_trained", 0)
        if not accuracies or len(accuracies) != epochs:
            return None
        final = accuracies[-1]
        reached = next(e for e, a in enumerate(accuracies, 1) if a >= final - reached_within)
        task_search = report.get("search_seconds", 0.0)
        task_input_model = report.get("input_model_seconds", 0.0)
        per_epoch = max(seconds - task_search - task_input_model, 0.0) / (epochs + retrain_epochs)
        needed += seconds - per_epoch * (epochs - reached)
        validation += report.get("validation_seconds", 0.0)
        search += task_search
        input_model += task_input_model
        all_epochs += epochs + retrain_epochs
    return TimeSpent(
        train=result.train_seconds, to_final_accuracy=needed, validation=validation,
        search=search, input_model=input_model, epochs=all_epochs,
    )
