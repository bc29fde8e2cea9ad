"""Mixed-task batches: each example answered by its own task, the rows put back in order."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["answer_per_task", "check_task_labels"]


def check_task_labels(task_labels: object, batch: int) -> None:
    """One integer task label for the batch, or one per example; else a ValueError."""
    if task_labels is None:
        raise ValueError(
            "task_labels is None: pass the task of the batch or of each example, or infer "
            "it with clearn.infer_task(network, inputs) (clearn.predict_task_agnostic gives "
            "the logits)"
        )
    if isinstance(task_labels, bool) or not isinstance(task_labels, int | Tensor):
        raise ValueError(
            f"task_labels must be an int or a tensor of integer labels, got {task_labels!r}"
        )
    if isinstance(task_labels, Tensor):
        if task_labels.dtype.is_floating_point or task_labels.dtype == torch.bool:
            raise ValueError(f"task labels must be integers, got a {task_labels.dtype} tensor")
        if task_labels.dim() != 1 or len(task_labels) != batch or batch == 0:
            raise ValueError(
                f"task_labels needs one label per example: {batch} examples, labels of shape "
                f"{tuple(task_labels.shape)}"
            )


def answer_per_task(
    inputs: Tensor,
    task_labels: Tensor,
    answer: Callable[[Tensor, int], Tensor],
    *,
    check: Callable[[int], None],
) -> Tensor:
    """`answer(part, task)` for each task's examples; rows zero-padded to the widest answer.

    Every task is `check`ed before any is answered. One stable sort groups the examples by
    task: each group is then a contiguous slice, and the batch is gathered and scattered back
    once instead of once per task.
    """
    sorted_labels, order = torch.sort(task_labels, stable=True)
    tasks, counts = torch.unique_consecutive(sorted_labels, return_counts=True)
    tasks, counts = tasks.tolist(), counts.tolist()
    for task in tasks:
        check(task)
    grouped = inputs.index_select(0, order)  # 3× faster than inputs[order] on CPU
    parts, start = [], 0
    for task, count in zip(tasks, counts, strict=True):
        parts.append(answer(grouped[start : start + count], task))
        start += count
    width = max(part.shape[1] for part in parts)
    grouped_logits = inputs.new_zeros(len(inputs), width)
    start = 0
    for part, count in zip(parts, counts, strict=True):
        grouped_logits[start : start + count, : part.shape[1]] = part.to(inputs.dtype)
        start += count
    return torch.empty_like(grouped_logits).index_copy_(0, order, grouped_logits)
