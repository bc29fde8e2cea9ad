"""Accuracy of one task's queries over batches of examples."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from clearn.network import PackedNetwork
from clearn.task_inference import Method, infer_task, task_agnostic_logits

__all__ = ["AgnosticScore", "TaskScore", "task_accuracy", "task_agnostic_score", "task_score"]


@contextmanager
def _eval_mode(network: nn.Module) -> Iterator[None]:
    """The network in eval mode for the block, then back in the mode it was in."""
    was_training = network.training
    network.eval()
    try:
        yield
    finally:
        network.train(was_training)


def _on_device(
    batches: Iterable[Sequence[Tensor]], device: torch.device | str, task: int
) -> Iterator[tuple[Tensor, Tensor]]:
    """(inputs, labels) of each batch on `device`; ValueError when there is none."""
    empty = True
    for batch in batches:
        empty = False
        yield batch[0].to(device), batch[1].to(device)
    if empty:
        raise ValueError(f"no examples for task {task}")


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
    correct = total = 0
    loss = 0.0
    with _eval_mode(network):
        for inputs, labels in _on_device(batches, device, task):
            logits = network(inputs, task)
            correct += int((logits.argmax(1) == labels).sum())
            loss += float(nn.functional.cross_entropy(logits, labels, reduction="sum"))
            total += len(labels)
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
    network: PackedNetwork,
    batches: Iterable[Sequence[Tensor]],
    task: int,
    device: torch.device | str,
    *,
    method: Method | str | None = None,
) -> AgnosticScore:
    """Scores of task `task`'s examples answered without their task label: an example counts
    as right when its task is inferred (`infer_task`'s `method`; None: its default) and its
    class is then predicted right."""
    right = right_task = total = 0
    with _eval_mode(network):
        for inputs, labels in _on_device(batches, device, task):
            guess = infer_task(network, inputs, method=method)
            found = guess.tasks.to(device) == task
            predicted = task_agnostic_logits(guess).argmax(1)
            right += int((found & (predicted == labels)).sum())
            right_task += int(found.sum())
            total += len(labels)
    return AgnosticScore(right / total, right_task / total)
