"""Accuracy of one task's queries over batches of examples."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from clearn.network import Method, TaskNetwork, task_agnostic_logits

__all__ = ["AgnosticScore", "TaskScore", "task_accuracy", "task_agnostic_score", "task_score"]


@dataclass(frozen=True)
class TaskScore:
    """Accuracy and mean cross-entropy of one task's queries."""

    accuracy: float
    loss: float


@torch.no_grad()
def task_score(
    network: nn.Module, batches: Iterable[Sequence[Tensor]], task: int, device: torch.device | str
) -> TaskScore:
    """Accuracy (argmax logit for `task` equals the label) and mean cross-entropy.

    `batches` yields sequences whose first two items are inputs and labels (Avalanche's and
    the TensorBatchLoader's minibatches both do). The network is put in eval mode and
    restored to its previous mode afterwards.
    """
    was_training = network.training
    network.eval()
    correct = total = 0
    loss = 0.0
    try:
        for batch in batches:
            inputs, labels = batch[0].to(device), batch[1].to(device)
            logits = network(inputs, task)
            correct += int((logits.argmax(1) == labels).sum())
            loss += float(nn.functional.cross_entropy(logits, labels, reduction="sum"))
            total += len(labels)
    finally:
        network.train(was_training)
    if total == 0:
        raise ValueError(f"no validation examples for task {task}")
    return TaskScore(correct / total, loss / total)


def task_accuracy(
    network: nn.Module, batches: Iterable[Sequence[Tensor]], task: int, device: torch.device | str
) -> float:
    """Share of examples whose argmax logit for `task` is their label (see `task_score`)."""
    return task_score(network, batches, task, device).accuracy


@dataclass(frozen=True)
class AgnosticScore:
    """Task-agnostic accuracy (task inferred, then the class right) and task-id accuracy."""

    accuracy: float
    task_id_accuracy: float


@torch.no_grad()
def task_agnostic_score(
    network: TaskNetwork,
    batches: Iterable[Sequence[Tensor]],
    task: int,
    device: torch.device | str,
    *,
    method: Method = "example",
) -> AgnosticScore:
    """Scores of task `task`'s examples answered without their task label: an example counts
    as right when its task is inferred and its class is then predicted right."""
    was_training = network.training
    network.eval()
    right = right_task = total = 0
    try:
        for batch in batches:
            inputs, labels = batch[0].to(device), batch[1].to(device)
            guess = network.infer_task(inputs, method=method)
            found = guess.tasks.to(device) == task
            predicted = task_agnostic_logits(guess).argmax(1)
            right += int((found & (predicted == labels)).sum())
            right_task += int(found.sum())
            total += len(labels)
    finally:
        network.train(was_training)
    if total == 0:
        raise ValueError(f"no examples for task {task}")
    return AgnosticScore(right / total, right_task / total)
