"""The task lifecycle of a PackedNetwork: train on free weights, prune, freeze, move on.

`TaskPacker` is a small state machine, IDLE → TRAINING → PRUNED → IDLE, one round per task.
It implements both EfficientPackNet (kept fraction searched on validation data, no
retraining) and classic PackNet (fixed fraction, then retraining the survivors).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import replace
from typing import Literal

import torch
from torch import Tensor, nn

from clearn.epn import KeptSearch, check_gamma, search_kept_fraction
from clearn.frozen import TaskFreeze
from clearn.network import PackedNetwork
from clearn.powerprop import effective_weights, reinitialise_
from clearn.pruning import DEFAULT_SCOPE, Scope, magnitude_masks

__all__ = [
    "TRAIN_LAYERS",
    "CapacityExhaustedError",
    "Phase",
    "PhaseError",
    "TaskPacker",
    "TrainLayers",
]

TrainLayers = Literal["all", "first"]
TRAIN_LAYERS: tuple[TrainLayers, ...] = ("all", "first")
"""Which masked layers' free weights a task after the first trains: all of them, or only the
first (the input layer), each later task then reusing the deeper weights earlier tasks own
rather than claiming fresh ones there (the first task always trains every layer)."""


class Phase(enum.Enum):
    """Where the current task stands."""

    IDLE = "idle"
    TRAINING = "training"
    PRUNED = "pruned"


class PhaseError(RuntimeError):
    """A lifecycle method was called in a phase where it is not allowed."""


class CapacityExhaustedError(RuntimeError):
    """No free weights are left for a new task."""


class TaskPacker:
    """Drives a PackedNetwork through train → prune → freeze for one task after another.

    Frozen means bit-for-bit unchanged whatever the optimizer does: after every optimizer
    step `restore_frozen` writes the frozen values back, so momentum, weight decay and Adam
    state cannot move weights of earlier tasks. Biases and normalisation parameters (and
    BatchNorm running statistics) are trained with the first task, then frozen.
    """

    def __init__(
        self,
        network: PackedNetwork,
        *,
        scope: Scope = DEFAULT_SCOPE,
        seed: int = 0,
        init_scale: float = 1.0,
        redraw_free: bool = True,
        train_layers: TrainLayers = "all",
    ) -> None:
        if train_layers not in TRAIN_LAYERS:
            raise ValueError(f"train_layers must be 'all' or 'first', got {train_layers!r}")
        self.network = network
        self.scope: Scope = scope
        self.init_scale = init_scale
        """Factor on PyTorch's default init for every weight drawn (the first task's too)."""
        self.redraw_free = redraw_free
        """Redraw the free weights before each task; False lets later tasks start from the
        trained values their predecessors pruned away (the first task always draws)."""
        self.phase = Phase.IDLE
        self.task: int | None = None
        """Task of the current round (0-based), None when idle."""
        self.train_layers: TrainLayers = train_layers
        """Which masked layers a task after the first trains (`TRAIN_LAYERS`)."""
        self.frozen_features = False
        """True when the current task trains its head only, for lack of free weights."""
        self._trained_layers: list[str] = []
        """The masked layers whose free weights the current task trains."""
        self._generator = torch.Generator().manual_seed(seed)
        self._frozen = TaskFreeze()
        self._trained_free: dict[str, Tensor] = {}

    def _require(self, *phases: Phase) -> None:
        if self.phase not in phases:
            allowed = " or ".join(p.value for p in phases)
            raise PhaseError(f"this step needs phase {allowed}; the packer is {self.phase.value}")

    def begin_task(self, task: int, *, allow_frozen_features: bool = False) -> None:
        """IDLE → TRAINING. Redraw the free weights, freeze everything not task `task`'s.

        Tasks come in order 0, 1, 2, …. With no free weight left this raises
        CapacityExhaustedError, unless `allow_frozen_features` lets the task train its head
        on the frozen features of the earlier tasks.
        """
        self._require(Phase.IDLE)
        network = self.network
        if task != network.trained_tasks:
            raise ValueError(
                f"tasks are trained in order: expected task {network.trained_tasks}, got {task}"
            )
        if task >= network.n_tasks:
            raise ValueError(f"the network has {network.n_tasks} heads; task {task} has none")
        names = list(network.masks)
        trained = names if task == 0 or self.train_layers == "all" else names[:1]
        self.frozen_features = not any(bool(network.masks[n].free().any()) for n in trained)
        if self.frozen_features and not allow_frozen_features:
            raise CapacityExhaustedError(
                f"no free weights are left for task {task}: lower gamma (EfficientPackNet) "
                f"or the prune fraction's kept share (PackNet), use a bigger backbone, or "
                f"allow training the head on frozen features (allow_frozen_features=True)"
            )
        if task == 0 or self.redraw_free:
            layers = self.network.layers
            for name, mask in network.masks.items():
                reinitialise_(layers[name], mask.free(), self._generator, scale=self.init_scale)
        for norm in network.norms.values():
            norm.start(task)
        self._trained_layers = [] if self.frozen_features else trained
        used = {
            name: where if name in self._trained_layers else torch.ones_like(where)
            for name, where in network.used_masks().items()
        }
        self._frozen = TaskFreeze.for_task(network, task, used)
        self.task, self.phase = task, Phase.TRAINING
        network.training_task = task
        network.head_only = self.frozen_features and not network.norms  # norms: its own copies
        network.show_free_weights(True, layers=self._trained_layers)

    @property
    def held_parameters(self) -> tuple[nn.Parameter, ...]:
        """The parameters frozen whole while the current task trains (other tasks' heads,
        the shared parameters, layers with no free weight): they take no gradient until
        `end_task`, so an optimizer may leave them out (`clearn.frozen.OptimizerScope`)."""
        return self._frozen.held

    @torch.no_grad()
    def restore_frozen(self, *, parameters: bool = True) -> None:
        """Write the frozen values back (call after every optimizer step). Phase TRAINING/PRUNED.

        Where few of a layer's weights are frozen they are written by index, not in a pass
        over the whole layer (`SPARSE_RESTORE_BELOW`). `parameters=False` writes back only
        buffers (BatchNorm statistics), after `zero_frozen_gradients` under an optimizer for
        which `zero_gradient_moves_nothing`.
        """
        self._require(Phase.TRAINING, Phase.PRUNED)
        self._frozen.restore(parameters=parameters)

    @torch.no_grad()
    def zero_frozen_gradients(self) -> None:
        """Between the backward pass and the optimizer step: the frozen weights' gradients
        become +0.0 (or are dropped where a whole tensor is frozen). Under an optimizer for
        which `zero_gradient_moves_nothing` the step then leaves them bit for bit, and one
        bitwise pass over each gradient replaces restore_frozen's two over each weight."""
        self._require(Phase.TRAINING, Phase.PRUNED)
        self._frozen.zero_gradients()

    def trained_free_weights(self) -> dict[str, Tensor]:
        """Masks of the weights this task trained (free at its start, in the layers it
        trains). Phase TRAINING."""
        self._require(Phase.TRAINING)
        return {
            name: mask.free()
            if name in self._trained_layers
            else torch.zeros_like(mask.owner, dtype=torch.bool)
            for name, mask in self.network.masks.items()
        }

    def candidate_masks(self, kept: float) -> dict[str, Tensor]:
        """Kept-weight masks for keeping fraction `kept` of the trained free weights, by
        magnitude of the effective weight. Phase TRAINING."""
        eligible = self.trained_free_weights()
        with self.network.viewing(None):
            weights = effective_weights(self.network.backbone)
        weights = {name: weights[name] for name in eligible}
        return magnitude_masks(weights, kept, scope=self.scope, eligible=eligible)

    def evaluate_candidate(
        self, kept_masks: dict[str, Tensor], evaluate: Callable[[], float]
    ) -> float:
        """`evaluate()` with the current task seeing earlier tasks' weights plus `kept_masks`."""
        self._require(Phase.TRAINING)
        for name, mask in self.network.masks.items():
            mask.candidate = kept_masks[name] | mask.owned_up_to(self.task - 1)
        try:
            return evaluate()
        finally:
            for mask in self.network.masks.values():
                mask.candidate = None

    def search(
        self,
        evaluate: Callable[[], float],
        *,
        gamma: float,
        guard: Callable[[], float] | None = None,
        at_most: float = 1.0,
    ) -> KeptSearch:
        """EfficientPackNet: smallest kept fraction whose `evaluate()` ≥ gamma·(unpruned).

        With `guard` (say, accuracy on the task's training data), a candidate must also keep
        gamma of the guard's unpruned value: a small validation set cannot tell a pruned
        network that still fits the task from one that lost it, and the smallest kept
        fraction that passes by chance is the one a search finds. The guard (the costlier
        evaluation) runs only on candidates that pass `evaluate`; one that then fails it is
        recorded with score -1. `at_most` caps the kept fraction (`search_kept_fraction`).
        """
        self._require(Phase.TRAINING)
        self.network.show_free_weights(True, layers=self._trained_layers)
        unpruned = evaluate()
        threshold = check_gamma(gamma) * unpruned
        guard_threshold = None if guard is None else gamma * guard()

        def score_at(kept: float) -> float:
            masks = self.candidate_masks(kept)
            score = self.evaluate_candidate(masks, evaluate)
            if score < threshold or guard_threshold is None:
                return score
            return score if self.evaluate_candidate(masks, guard) >= guard_threshold else -1.0

        search = search_kept_fraction(score_at, reference=unpruned, gamma=gamma, at_most=at_most)
        if search.budget_bound and search.score < 0:  # the cap failed the guard: its score
            score = self.evaluate_candidate(self.candidate_masks(search.kept), evaluate)
            search = replace(search, score=score)
        return search

    def prune(self, kept: float) -> dict[str, Tensor]:
        """TRAINING → PRUNED: the task owns its top `kept` share of the weights it trained;
        the others go back to free and leave the task's view."""
        self._require(Phase.TRAINING)
        masks = (
            {
                name: torch.zeros_like(m.owner, dtype=torch.bool)
                for name, m in self.network.masks.items()
            }
            if self.frozen_features
            else self.candidate_masks(kept)
        )
        for name, mask in self.network.masks.items():
            mask.assign(self.task, masks[name])
        self.network.show_free_weights(False)
        self.phase = Phase.PRUNED
        return masks

    def end_task(self) -> None:
        """PRUNED → IDLE: the task is frozen and answers queries from now on."""
        self._require(Phase.PRUNED)
        self.network.trained_tasks = self.task + 1
        self.network.training_task = None
        self.network.head_only = False
        self._frozen.release()
        self._frozen = TaskFreeze()
        self._trained_layers = []
        self.task, self.phase = None, Phase.IDLE

    def state_dict(self) -> dict:
        """The packer's own state (the network's is in the network's state_dict)."""
        if self.phase is not Phase.IDLE:
            raise PhaseError("save between tasks: the packer is in the middle of a task")
        return {"generator": self._generator.get_state(), "scope": self.scope}

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` saved. Phase IDLE."""
        self._require(Phase.IDLE)
        self._generator.set_state(state["generator"])
        self.scope = state["scope"]
