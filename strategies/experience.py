"""What an Avalanche experience says about its task: its label and its number of classes.

Read from the experience's dataset, which every Avalanche benchmark carries, rather than from
attributes that some experience types lack (`task_labels` on a validation split's experience).
"""

from __future__ import annotations

__all__ = ["TASK_LABELS_HOWTO", "check_new_task", "class_count", "classes", "task_label"]

TASK_LABELS_HOWTO = (
    "build the benchmark with task labels, e.g. PermutedMNIST(..., return_task_id=True), "
    "SplitMNIST(..., return_task_id=True) or nc_benchmark(..., task_labels=True, "
    "class_ids_from_zero_in_each_exp=True)"
)
"""How an Avalanche user gets a task-incremental stream: the fix named by task-label errors."""


def task_label(experience) -> int:
    """The one task label of `experience`; ValueError when it mixes tasks."""
    labels = sorted(experience.dataset.targets_task_labels.uniques)
    if len(labels) != 1:
        raise ValueError(
            f"an experience must hold one task for per-task packing, this one holds task "
            f"labels {labels}; build the benchmark with one task per experience"
        )
    return int(labels[0])


def classes(experience) -> set[int]:
    """The class labels that `experience`'s examples carry."""
    return {int(c) for c in experience.dataset.targets.uniques}


def class_count(experience) -> int:
    """Outputs a head needs for `experience`: its largest class label + 1."""
    return max(classes(experience)) + 1


def check_new_task(experience, trained_tasks: int, *, strategy: str) -> int:
    """The task label of `experience`, about to be trained after `trained_tasks` tasks;
    ValueError naming the fix when it is a task already trained (a stream without task
    labels, or a class-incremental one, labels every experience 0)."""
    task = task_label(experience)
    if task < trained_tasks:
        raise ValueError(
            f"experience {experience.current_experience} has task label {task}, a task "
            f"trained already: {strategy} is task-incremental and needs a new task label "
            f"per experience (0, 1, 2, … in order); {TASK_LABELS_HOWTO}"
        )
    return task
