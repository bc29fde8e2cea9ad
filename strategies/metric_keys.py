"""Names of the Avalanche metric values clearn writes or reads back, defined once."""

from __future__ import annotations

__all__ = [
    "CAPACITY",
    "CAPACITY_CAP",
    "CAPACITY_FREE",
    "CAPACITY_USED",
    "experience_accuracy_key",
    "task_kept_key",
    "task_owned_key",
]

CAPACITY = "Capacity"
"""Prefix (and the metric's name) of every capacity value."""
CAPACITY_CAP = "Capacity/CAP"
"""The WSN paper's CAP: share of the weights any task uses plus the masks' storage."""
CAPACITY_USED = "Capacity/used"
"""Share of the maskable weights owned by some task, after each training experience."""
CAPACITY_FREE = "Capacity/free"
"""Share of the maskable weights no task owns."""


def task_owned_key(task: int) -> str:
    """Share of the network that task `task` owns."""
    return f"Capacity/owned/Task{task:03}"


def task_kept_key(task: int) -> str:
    """Share of the weights task `task` trained that it kept."""
    return f"Capacity/kept/Task{task:03}"


def experience_accuracy_key(task: int, stream: str = "test_stream") -> str:
    """Key of Avalanche's per-experience accuracy for the experience of task `task` (one
    experience per task, experience number = task label)."""
    return f"Top1_Acc_Exp/eval_phase/{stream}/Task{task:03d}/Exp{task:03d}"
