"""The task lifecycle of a PackedNetwork: train on free weights, prune, freeze, move on.

`TaskPacker` is a small state machine, IDLE → TRAINING → PRUNED → IDLE, one round per task.
It implements both EfficientPackNet (kept fraction searched on validation data, no
retraining) and classic PackNet (fixed fraction, then retraining the survivors).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from clearn.bits import as_bits, keep_bits
from clearn.epn import KeptSearch, check_gamma, search_kept_fraction
from clearn.network import PackedNetwork
from clearn.powerprop import effective_weights, reinitialise_
from clearn.pruning import DEFAULT_SCOPE, Scope, magnitude_masks

__all__ = [
    "CapacityExhaustedError",
    "FrozenEntries",
    "Phase",
    "PhaseError",
    "TaskPacker",
    "freeze_unowned",
    "zero_gradient_moves_nothing",
]


class Phase(enum.Enum):
    """Where the current task stands."""

    IDLE = "idle"
    TRAINING = "training"
    PRUNED = "pruned"


class PhaseError(RuntimeError):
    """A lifecycle method was called in a phase where it is not allowed."""


class CapacityExhaustedError(RuntimeError):
    """No free weights are left for a new task."""


SPARSE_RESTORE_BELOW = 0.1
"""Frozen share of a layer under which its frozen entries are written back by index; above
it, two bitwise passes over the whole layer are quicker (measured on a 784×300 layer, by
index / bitwise: 76 / 82 µs at 10% frozen, 116 / 51 at 30%, 221 / 41 at 60%, 323 / 39 at
90%; a masked `torch.where` took 190–470 µs)."""


@dataclass
class _Frozen:
    """What must not change while a task trains: values, and where they apply."""

    target: Tensor
    """The parameter or buffer itself (held, so that restoring looks nothing up)."""
    values: Tensor
    """The frozen values: flat in `index` order when `index` is set; else the whole tensor,
    or with `keep` its frozen entries' bits (zero bits elsewhere)."""
    index: Tensor | None = None
    """Flat indices of the frozen entries, when few of the tensor's entries are frozen."""
    keep: Tensor | None = None
    """`keep_bits` of the entries that train, when many but not all are frozen."""

    @classmethod
    def entries(cls, target: Tensor, where: Tensor) -> _Frozen:
        """The entries of `target` where `where` is True, stored the quicker way to restore."""
        if float(where.float().mean()) < SPARSE_RESTORE_BELOW:
            index = where.flatten().nonzero().squeeze(1)
            return cls(target, target.detach().flatten()[index], index=index)
        if bool(where.all()):
            return cls(target, target.detach().clone())
        frozen_bits = as_bits(target.detach()) & keep_bits(where, target)
        return cls(target, frozen_bits, keep=keep_bits(~where, target))

    def restore(self) -> None:
        """Write the frozen values back into the target, bit for bit.

        A parameter without a gradient is left alone: torch.optim's optimizers step only
        parameters whose `grad` is set, so nothing can have moved it (another task's head).
        """
        target = self.target
        if self.index is not None:
            target.view(-1).index_copy_(0, self.index, self.values)
        elif self.keep is not None:
            as_bits(target).bitwise_and_(self.keep).bitwise_or_(self.values)
        elif not (isinstance(target, nn.Parameter) and target.grad is None):
            target.copy_(self.values)

    def zero_gradient(self) -> None:
        """Set the frozen entries' gradient to +0.0 (drop it where every entry is frozen)."""
        gradient = self.target.grad
        if gradient is None:
            return
        if self.index is not None:
            gradient.view(-1).index_fill_(0, self.index, 0.0)
        elif self.keep is not None:
            as_bits(gradient).bitwise_and_(self.keep)
        else:
            self.target.grad = None


FrozenEntries = _Frozen
"""The frozen-entries record, public for other mask kinds' trainers (WSN, SupSup): build with
`FrozenEntries.entries(tensor, where)`, then `restore()` after each step or `zero_gradient()`
before it."""


def freeze_unowned(network: PackedNetwork, task: int) -> dict[str, _Frozen]:
    """What must not change while task `task` trains, besides the masked weights (which a
    mask kind freezes its own way): the other tasks' own parameters (heads, BatchNorm
    copies); from the second task on also the shared parameters (biases, shared
    normalisation) and the backbone's buffers other than the task's own BatchNorm's."""
    others = [other for other in range(network.n_tasks) if other != task]
    tensors = {name: p for other in others for name, p in network.task_parameters(other).items()}
    if task > 0:
        tensors |= network.shared_parameters() | network.shared_buffers()
        tensors |= {name: b for other in others for name, b in network.task_buffers(other).items()}
    return {name: _Frozen(tensor, tensor.detach().clone()) for name, tensor in tensors.items()}


def zero_gradient_moves_nothing(optimizer: torch.optim.Optimizer) -> bool:
    """Whether `optimizer.step()` leaves a parameter bit for bit as it was where its gradient
    is +0.0: plain `torch.optim.SGD` (no momentum, no weight decay, not maximising, a finite
    step size), whose update θ + (−lr)·(+0) adds −0.0, which changes no float, ±0 included.
    Momentum, weight decay and Adam's moments can move a weight whose gradient is zero."""
    if type(optimizer) is not torch.optim.SGD:
        return False
    return all(
        group["momentum"] == 0
        and group["weight_decay"] == 0
        and not group["maximize"]
        and math.isfinite(float(group["lr"]))
        for group in optimizer.param_groups
    )


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
    ) -> None:
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
        self.frozen_features = False
        """True when the current task trains its head only, for lack of free weights."""
        self._generator = torch.Generator().manual_seed(seed)
        self._frozen: dict[str, _Frozen] = {}
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
        self.frozen_features = network.capacity().free == 0.0
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
        self._frozen = self._snapshot(task)
        self.task, self.phase = task, Phase.TRAINING
        network.training_task = task
        network.show_free_weights(True)

    def _snapshot(self, task: int) -> dict[str, _Frozen]:
        network = self.network
        frozen = {}
        for name, weight in network.masked_weights().items():
            where = network.masks[name].used()
            if self.frozen_features:
                where = torch.ones_like(where)
            if bool(where.any()):  # nothing frozen yet (first task): nothing to restore
                frozen[f"backbone.{name}.weight"] = _Frozen.entries(weight, where)
        return frozen | freeze_unowned(network, task)

    @torch.no_grad()
    def restore_frozen(self, *, parameters: bool = True) -> None:
        """Write the frozen values back (call after every optimizer step). Phase TRAINING/PRUNED.

        Where few of a layer's weights are frozen they are written by index, not in a pass
        over the whole layer (`SPARSE_RESTORE_BELOW`). `parameters=False` writes back only
        buffers (BatchNorm statistics), after `zero_frozen_gradients` under an optimizer for
        which `zero_gradient_moves_nothing`.
        """
        self._require(Phase.TRAINING, Phase.PRUNED)
        for frozen in self._frozen.values():
            if parameters or not isinstance(frozen.target, nn.Parameter):
                frozen.restore()

    @torch.no_grad()
    def zero_frozen_gradients(self) -> None:
        """Between the backward pass and the optimizer step: the frozen weights' gradients
        become +0.0 (or are dropped where a whole tensor is frozen). Under an optimizer for
        which `zero_gradient_moves_nothing` the step then leaves them bit for bit, and one
        bitwise pass over each gradient replaces restore_frozen's two over each weight."""
        self._require(Phase.TRAINING, Phase.PRUNED)
        for frozen in self._frozen.values():
            frozen.zero_gradient()

    def trained_free_weights(self) -> dict[str, Tensor]:
        """Masks of the weights this task trained (free at its start). Phase TRAINING."""
        self._require(Phase.TRAINING)
        return {name: mask.free() for name, mask in self.network.masks.items()}

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
        self.network.show_free_weights(True)
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
        self._frozen = {}
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
