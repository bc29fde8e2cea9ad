"""How long one task trains: until its validation score stops improving, within an epoch cap.

A fixed epoch count tuned on one data set under-trains on smaller data and wastes time on
larger data; `TaskBudget` trains each task until its validation score has not improved for
`patience` epochs (the epoch count is then only a cap), leaves `retrain_epochs` of the cap for
retraining the survivors after pruning, and says when a task ran out of epochs while its
score was still improving.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

from clearn.defaults import DEFAULT_PATIENCE, MIN_PATIENCE_STEPS

__all__ = [
    "EpochAction",
    "TaskBudget",
]


class EpochAction(enum.Enum):
    """What the training loop does after an epoch."""

    CONTINUE = "continue"
    PACK = "pack"
    """Prune and freeze now; the remaining `retrain_epochs` retrain the survivors."""
    STOP = "stop"
    """Stop this task's training (after packing, or after its retraining)."""


@dataclass
class TaskBudget:
    """The epoch schedule of one task; `after_epoch` is called once per finished epoch.

    A score is higher-is-better (pass minus the validation loss). With `patience` None the
    task trains `max_epochs - retrain_epochs` epochs whatever its score (the classic fixed
    schedule); scores are still recorded for `under_trained`.
    """

    max_epochs: int
    retrain_epochs: int = 0
    """Epochs after packing, within the cap (at most `max_epochs - 1`)."""
    patience: int | None = DEFAULT_PATIENCE
    min_steps: int = MIN_PATIENCE_STEPS
    """Optimizer steps that the epochs without improvement must also span."""
    scores: list[float] = field(default_factory=list)
    """Validation score after each training epoch before packing."""
    packed_after: int | None = None
    """Epochs trained when the task was packed (None while it trains)."""
    plateaued: bool = False
    """Whether training stopped because the score stopped improving."""
    _epochs: int = 0
    _stale_epochs: int = 0
    _stale_steps: int = 0
    _retrained: int = 0

    def __post_init__(self) -> None:
        if self.max_epochs < 1:
            raise ValueError(f"the epoch cap must be at least 1, got {self.max_epochs}")
        if self.retrain_epochs < 0:
            raise ValueError(f"retrain epochs must not be negative, got {self.retrain_epochs}")
        # A cap of fewer epochs than that leaves one epoch to train and retrains in the rest.
        self.retrain_epochs = min(self.retrain_epochs, self.max_epochs - 1)
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be at least 1 epoch (or None), got {self.patience}")
        if self.min_steps < 0:
            raise ValueError(f"min_steps must not be negative, got {self.min_steps}")

    def after_epoch(self, score: float | None = None, *, steps: int = 0) -> EpochAction:
        """Record an epoch of `steps` optimizer steps and its validation `score` (None
        without validation data); say what the loop does next."""
        if self.packed_after is not None:
            self._retrained += 1
            done = self._retrained >= self.retrain_epochs
            return EpochAction.STOP if done else EpochAction.CONTINUE
        self._epochs += 1
        if score is not None:
            if math.isnan(score):  # a diverged network: no improvement (the loss guard stops it)
                score = -math.inf
            if not self.scores or score > max(self.scores):
                self._stale_epochs = self._stale_steps = 0
            else:
                self._stale_epochs += 1
                self._stale_steps += steps
            self.scores.append(score)
        self.plateaued = (
            self.patience is not None
            and self._stale_epochs >= self.patience
            and self._stale_steps >= self.min_steps
        )
        if self.plateaued or self._epochs >= self.max_epochs - self.retrain_epochs:
            self.packed_after = self._epochs
            return EpochAction.PACK if self.retrain_epochs else EpochAction.STOP
        return EpochAction.CONTINUE

    @property
    def under_trained(self) -> bool:
        """True when the cap ended training while the score was still improving: the last
        epoch beat every earlier one, or there was only one scored epoch to go by."""
        if self.plateaued or self.packed_after is None or not self.scores:
            return False
        return len(self.scores) == 1 or self.scores[-1] > max(self.scores[:-1])
