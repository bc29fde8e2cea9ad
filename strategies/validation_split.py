"""Avalanche plugin: each task's validation data, held out of its training experience."""

from __future__ import annotations

from avalanche.core import SupervisedPlugin

from clearn.defaults import DEFAULT_VALIDATION_SHARE
from strategies.validation import ValidationData

__all__ = ["ValidationSplitPlugin"]


class ValidationSplitPlugin(SupervisedPlugin):
    """Validation data by task label (`data`, a `ValidationData`): the experience of
    `valid_stream` with that label, or without a stream a seeded `share` of each training
    experience, held out of training once Avalanche has adapted the experience's dataset.

    Shared by the packing strategies and the baselines; put it before the plugins that
    validate (`PlateauBudgetPlugin`, `PackingPlugin`).
    """

    def __init__(
        self, valid_stream=None, *, share: float = DEFAULT_VALIDATION_SHARE, seed: int = 0
    ) -> None:
        super().__init__()
        self.data = ValidationData(valid_stream, share=share, seed=seed)

    def state_dict(self) -> dict:
        """Nothing to checkpoint: a held-out share is drawn again from its seed."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Nothing to restore (see `state_dict`)."""

    def after_train_dataset_adaptation(self, strategy, **kwargs) -> None:
        self.data.hold_out(strategy)
