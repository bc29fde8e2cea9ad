"""Pruning one trained task: the kept fraction searched (EfficientPackNet) or fixed (PackNet),
retraining of the survivors kept only when it helped, and the task's report."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase

from clearn.defaults import DEFAULT_GAMMA, DEFAULT_PRUNE_FRACTION
from clearn.epn import check_gamma
from clearn.network import PackedNetwork
from clearn.packing import TaskPacker

__all__ = [
    "MODES",
    "PackMode",
    "PrunedTask",
    "RetrainingCheck",
    "TaskReport",
    "PruningRule",
    "check_task_budget",
    "report_task",
]

PackMode = Literal["epn", "packnet"]
MODES: tuple[PackMode, ...] = ("epn", "packnet")
"""How a task's kept fraction is chosen: searched on validation data, or fixed."""


def check_task_budget(task_budget: int | None) -> int | None:
    """Return `task_budget`, or raise ValueError unless it is None or a whole number ≥ 1."""
    if task_budget is None:
        return None
    if isinstance(task_budget, bool) or not isinstance(task_budget, int) or task_budget < 1:
        raise ValueError(
            f"task_budget must be the number of tasks the stream will have (a whole number "
            f"of at least 1), got {task_budget!r}"
        )
    return task_budget


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
    input_model_seconds: float = 0.0
    """Time spent fitting the task's model of its training inputs (one pass over them, for
    task inference from the input)."""
    kept_budget: float | None = None
    """The most of its trained weights the task could keep under the task budget (None:
    no budget)."""
    budget_bound: bool = False
    """True when the budget, not gamma, set what the task kept: it gave up the accuracy
    between gamma of its unpruned one and its pruned one."""


@dataclass(frozen=True)
class PrunedTask:
    """How a task was pruned: kept share of its trained weights, validation accuracy before
    and after (None where not measured), and the search's evaluations."""

    kept: float
    unpruned: float | None = None
    pruned: float | None = None
    evaluations: int = 0
    kept_budget: float | None = None
    budget_bound: bool = False


@dataclass(frozen=True)
class PruningRule:
    """How each task's kept fraction is chosen: `mode="epn"` keeps the fewest weights whose
    validation accuracy stays ≥ `gamma` of the unpruned one (the accuracy on training
    examples, the guard, must hold too); `mode="packnet"` keeps `1 - prune_fraction`.

    `task_budget` (the number of tasks the stream will have, None: no budget) caps what
    each task keeps so that the free weights last: task t (0-based) keeps at most
    1/(task_budget − t) of the weights it trained, an equal share of what is left for the
    tasks still to come (the last budgeted task, and any after it, may keep all it trained).
    """

    mode: PackMode = "epn"
    gamma: float = DEFAULT_GAMMA
    prune_fraction: float = DEFAULT_PRUNE_FRACTION
    task_budget: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be 'epn' or 'packnet', got {self.mode!r}")
        if not 0.0 <= self.prune_fraction < 1.0:
            raise ValueError(f"prune_fraction must be in [0, 1), got {self.prune_fraction}")
        check_task_budget(self.task_budget)
        object.__setattr__(self, "gamma", check_gamma(self.gamma))  # a float in (0, 1]

    def kept_budget(self, task: int) -> float | None:
        """The most of its trained weights task `task` may keep (None: no budget)."""
        if self.task_budget is None:
            return None
        return 1.0 / max(self.task_budget - task, 1)

    def prune(
        self, packer: TaskPacker, *, validate: Callable[[], float], guard: Callable[[], float]
    ) -> PrunedTask:
        """Prune the packer's current task (phase TRAINING → PRUNED); `validate()` and
        `guard()` score the network on validation and on training examples. A task on
        frozen features keeps nothing."""
        budget = self.kept_budget(packer.task)
        cap = 1.0 if budget is None else budget
        outcome = PrunedTask(kept=min(1.0 - self.prune_fraction, cap), kept_budget=budget)
        if packer.frozen_features:
            outcome = PrunedTask(kept=0.0, kept_budget=budget)
        elif self.mode == "epn":
            search = packer.search(validate, gamma=self.gamma, guard=guard, at_most=cap)
            outcome = PrunedTask(
                search.kept, search.reference, search.score, len(search.evaluations) + 1,
                kept_budget=budget, budget_bound=search.budget_bound,
            )  # fmt: skip
        else:
            outcome = dataclasses.replace(outcome, budget_bound=cap < 1.0 - self.prune_fraction)
        packer.prune(outcome.kept)
        return outcome


class RetrainingCheck:
    """The network's state right after pruning, restored if retraining the survivors lowers
    validation accuracy below `pruned_accuracy`.

    Retraining moves only the survivors, and under Powerprop the largest weights move
    fastest: with very few survivors one epoch at the training step size can undo what the
    search kept. Only what retraining can change is kept: the parameters that take a
    gradient and the running statistics of normalisation layers (not the heads of earlier
    tasks, which the task holds frozen, nor each task's model of its inputs: a copy of those
    grew with every task).
    """

    def __init__(self, network: nn.Module, pruned_accuracy: float) -> None:
        self.network = network
        self.pruned_accuracy = pruned_accuracy
        changeable = [p for p in network.parameters() if p.requires_grad]
        changeable += [b for m in network.modules() if isinstance(m, _NormBase)
                       for b in m.buffers(recurse=False)]  # fmt: skip
        self._saved = [(tensor, tensor.detach().clone()) for tensor in changeable]

    @torch.no_grad()
    def keep_if_it_helped(self, accuracy: float) -> bool:
        """Given the validation accuracy after retraining, undo the retraining when it is
        lower than after pruning; say whether the retraining stayed."""
        if accuracy >= self.pruned_accuracy:
            return True
        for tensor, saved in self._saved:
            tensor.copy_(saved)
        return False


def report_task(
    network: PackedNetwork, task: int, pruned: PrunedTask, **training: object
) -> TaskReport:
    """The report of task `task`, just packed into `network`: how it was pruned, the share of
    the network it owns and the share left free, and `training`'s other TaskReport fields."""
    capacity = network.capacity()
    return TaskReport(
        task=task,
        unpruned_val_acc=pruned.unpruned,
        pruned_val_acc=pruned.pruned,
        kept_of_trained=pruned.kept,
        owned_fraction=capacity.owned[task],
        free_fraction=capacity.free,
        search_evaluations=pruned.evaluations,
        kept_budget=pruned.kept_budget,
        budget_bound=pruned.budget_bound,
        **training,
    )
