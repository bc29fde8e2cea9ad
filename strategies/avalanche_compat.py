"""Where clearn's strategies depart from how Avalanche 0.6's templates behave by default.

Each patch here names the Avalanche behaviour it works around; `tests/strategies/
test_avalanche_compat.py` checks that behaviour, so that an Avalanche upgrade that changes
it fails a test instead of silently changing what clearn computes.
"""

from __future__ import annotations

__all__ = ["TaskAwareForward", "minibatch_task_labels"]


def minibatch_task_labels(strategy):
    """The current minibatch's task labels, or None when the minibatch carries none.

    Avalanche passes task labels to the model only when the experience object has a
    `task_labels` attribute; `benchmark_with_validation_stream` builds experiences without
    it, although each example still carries its task label as the minibatch's last entry.
    """
    batch = strategy.mbatch
    return batch[-1] if batch is not None and len(batch) >= 3 else None


class TaskAwareForward:
    """Template mixin: the model is always called with the minibatch's task labels.

    For task-incremental strategies, whose model needs a task per example; Avalanche's own
    forward drops the labels on experiences that lack the `task_labels` attribute.
    """

    def forward(self):
        labels = minibatch_task_labels(self)
        if labels is None:
            return super().forward()
        return self.model(self.mb_x, labels)
