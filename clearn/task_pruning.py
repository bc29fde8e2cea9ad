"""Pruning one trained task: the kept fraction searched (EfficientPackNet) or fixed (PackNet),
retraining of the survivors kept only when it helped, and the task's report."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from torch import nn

from clearn.packing import TaskPacker

__all__ = [
    "MODES",
    "PackMode",
    "PrunedTask",
    "RetrainingCheck",
    "TaskReport",
    "check_mode",
    "prune_task",
]

PackMode = Literal["epn", "packnet"]
MODES: tuple[PackMode, ...] = ("epn", "packnet")
"""How a task's kept fraction is chosen: searched on validation data, or fixed."""


@dataclass(frozen=True)
class TaskReport:
    """What training and packing one task gave."""

    task: int
    unpruned_val_acc: float | None
    pruned_val_acc: float | None
    kept_of_trained: float
    """Share of the weights the task trained that it keeps."""
    owned_fraction: float
    """Share of the whole backbone the task owns."""
    free_fraction: float
    search_evaluations: int
    epochs_trained: int = 0
    """Epochs trained before pruning (the retraining epochs after it not counted)."""
    under_trained: bool = False
    """True when the epoch cap stopped the task while its validation loss still fell."""
    val_acc_per_epoch: tuple[float, ...] = ()
    """Validation accuracy of the unpruned task after each of its training epochs."""
    retraining_kept: bool = False
    """Whether the task kept its retrained survivors (False: no retraining, or retraining
    lowered validation accuracy and was undone)."""
    validation_examples: int = 0
    """Examples the task was validated on (its valid_stream experience or held-out share)."""
    validation_seconds: float = 0.0
    """Time spent validating the task after its training epochs (the plateau stop's signal)."""
    search_seconds: float = 0.0
    """Time spent pruning the task: the kept-fraction search, its guard, the pruning, and
    the check that retraining kept the pruned accuracy."""


@dataclass(frozen=True)
class PrunedTask:
    """How a task was pruned: kept share of its trained weights, validation accuracy before
    and after (None where not measured), and the search's evaluations."""

    kept: float
    unpruned: float | None = None
    pruned: float | None = None
    evaluations: int = 0


def check_mode(mode: str, prune_fraction: float) -> None:
    """Raise ValueError unless `mode` is one of MODES and `prune_fraction` lies in [0, 1)."""
    if mode not in MODES:
        raise ValueError(f"mode must be 'epn' or 'packnet', got {mode!r}")
    if not 0.0 <= prune_fraction < 1.0:
        raise ValueError(f"prune_fraction must be in [0, 1), got {prune_fraction}")


def prune_task(
    packer: TaskPacker,
    *,
    mode: PackMode,
    gamma: float,
    prune_fraction: float,
    validate: Callable[[], float],
    guard: Callable[[], float],
) -> PrunedTask:
    """Prune the packer's current task (phase TRAINING → PRUNED).

    `mode="epn"` keeps the fewest weights whose `validate()` accuracy stays ≥ `gamma` of the
    unpruned one (`guard()`, the accuracy on training examples, must hold too);
    `mode="packnet"` keeps `1 - prune_fraction`; a task on frozen features keeps nothing.
    """
    outcome = PrunedTask(kept=1.0 - prune_fraction)
    if packer.frozen_features:
        outcome = PrunedTask(kept=0.0)
    elif mode == "epn":
        search = packer.search(validate, gamma=gamma, guard=guard)
        outcome = PrunedTask(
            search.kept, search.reference, search.score, len(search.evaluations) + 1
        )
    packer.prune(outcome.kept)
    return outcome


class RetrainingCheck:
    """The network's state right after pruning, restored if retraining the survivors lowers
    validation accuracy below `pruned_accuracy`.

    Retraining moves only the survivors, and under Powerprop the largest weights move
    fastest: with very few survivors one epoch at the training step size can undo what the
    search kept.
    """

    def __init__(self, network: nn.Module, pruned_accuracy: float) -> None:
        self.network = network
        self.pruned_accuracy = pruned_accuracy
        self._state = copy.deepcopy(network.state_dict())

    def keep_if_it_helped(self, accuracy: float) -> bool:
        """Given the validation accuracy after retraining, undo the retraining when it is
        lower than after pruning; say whether the retraining stayed."""
        if accuracy >= self.pruned_accuracy:
            return True
        self.network.load_state_dict(self._state)
        return False
