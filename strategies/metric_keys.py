"""Names of the Avalanche metric values clearn reads back, defined once."""

from __future__ import annotations

__all__ = ["experience_accuracy_key"]


def experience_accuracy_key(task: int, stream: str = "test_stream") -> str:
    """Key of Avalanche's per-experience accuracy for the experience of task `task` (one
    experience per task, experience number = task label)."""
    return f"Top1_Acc_Exp/eval_phase/{stream}/Task{task:03d}/Exp{task:03d}"
