"""What an Avalanche experience says about its task: its label and its number of classes.

Read from the experience's dataset, which every Avalanche benchmark carries, rather than from
attributes that some experience types lack (`task_labels` on a validation split's experience).
"""

from __future__ import annotations

__all__ = ["class_count", "task_label"]


def task_label(experience) -> int:
    """The one task label of `experience`; ValueError when it mixes tasks."""
    labels = sorted(experience.dataset.targets_task_labels.uniques)
    if len(labels) != 1:
        raise ValueError(
            f"an experience must hold one task for per-task packing, this one holds task "
            f"labels {labels}; build the benchmark with one task per experience"
        )
    return int(labels[0])


def class_count(experience) -> int:
    """Outputs a head needs for `experience`: its largest class label + 1."""
    return int(max(experience.dataset.targets.uniques)) + 1
