"""Avalanche plugin: the accuracy of each experience evaluated, measured from its outputs."""

from __future__ import annotations

from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metrics import Accuracy

__all__ = ["ExperienceAccuracyPlugin"]


class ExperienceAccuracyPlugin(SupervisedPlugin):
    """During `strategy.eval(experiences)`, each experience's accuracy over its minibatches'
    outputs (Avalanche's `Accuracy`, the number its `Top1_Acc_Exp` metric logs), in
    `accuracies`, one per experience in the order evaluated: a run's accuracy matrix is read
    from here, not from metric names, and assumes nothing of experience ids or task labels.
    """

    def __init__(self) -> None:
        super().__init__()
        self.accuracies: list[float] = []
        """Accuracy of each experience of the last `eval` call, in its order."""
        self._accuracy = Accuracy()

    def state_dict(self) -> dict:
        """Nothing to checkpoint: each `eval` call measures afresh."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Nothing to restore (see `state_dict`)."""

    def before_eval(self, strategy, **kwargs) -> None:
        self.accuracies = []

    def before_eval_exp(self, strategy, **kwargs) -> None:
        self._accuracy.reset()

    def after_eval_iteration(self, strategy, **kwargs) -> None:
        self._accuracy.update(strategy.mb_output, strategy.mb_y)

    def after_eval_exp(self, strategy, **kwargs) -> None:
        self.accuracies.append(self._accuracy.result())
