"""Frozen means bit for bit unchanged: what a task must not move while it trains (earlier
tasks' weights, other tasks' heads, the shared parameters and buffers), stored so that it is
written back, or its gradient zeroed, in the fewest passes. `TaskPacker` and `SubnetTrainer`
freeze through `TaskFreeze`; HAT, whose masks are unit gates, keeps its own index snapshot
(`clearn.hat`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from clearn.bits import as_bits, keep_bits
from clearn.network import PackedNetwork

__all__ = [
    "SPARSE_RESTORE_BELOW",
    "FrozenEntries",
    "OptimizerScope",
    "TaskFreeze",
    "freeze_unowned",
    "zero_gradient_moves_nothing",
]

SPARSE_RESTORE_BELOW = 0.1
"""Frozen share of a layer under which its frozen entries are written back by index; above
it, two bitwise passes over the whole layer are quicker (measured on a 784×300 layer, by
index / bitwise: 76 / 82 µs at 10% frozen, 116 / 51 at 30%, 221 / 41 at 60%, 323 / 39 at
90%; a masked `torch.where` took 190–470 µs)."""


@dataclass
class FrozenEntries:
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
    def entries(cls, target: Tensor, where: Tensor) -> FrozenEntries:
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


def freeze_unowned(network: PackedNetwork, task: int) -> dict[str, Tensor]:
    """What must not change while task `task` trains, besides the masked weights (which a
    mask kind freezes its own way), by name: the other tasks' own parameters (heads,
    BatchNorm copies); from the second task on also the shared parameters (biases, shared
    normalisation) and the backbone's buffers other than the task's own BatchNorm's."""
    others = [other for other in range(network.n_tasks) if other != task]
    tensors = {name: p for other in others for name, p in network.task_parameters(other).items()}
    if task > 0:
        tensors |= network.shared_parameters() | network.shared_buffers()
        tensors |= {name: b for other in others for name, b in network.task_buffers(other).items()}
    return tensors


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


@dataclass
class TaskFreeze:
    """Everything frozen while one task trains: the entries written back or whose gradient
    is zeroed at each step, by parameter or buffer name, and the parameters frozen whole.

    A network holds two parameters per earlier task (its head's weight and bias), frozen
    whole: `for_task` takes their `requires_grad` until `release`, so that no optimizer can
    move them and no step needs to look at them; what a step checks then does not grow with
    the number of tasks.
    """

    entries: dict[str, FrozenEntries] = field(default_factory=dict)
    held: tuple[nn.Parameter, ...] = ()
    """The parameters frozen whole that take no gradient until `release`."""

    @classmethod
    def for_task(cls, network: PackedNetwork, task: int, frozen: dict[str, Tensor]) -> TaskFreeze:
        """The masked weights where `frozen` (by layer) is True, and what `freeze_unowned`
        freezes besides them. The parameters frozen whole take no gradient from now until
        `release` (a gradient they hold from before is dropped); those that took none already
        (set so by their owner) stay as they are."""
        entries, whole = {}, []
        for name, weight in network.masked_weights().items():
            if bool(frozen[name].all()):
                whole.append(weight)
            elif bool(frozen[name].any()):  # nothing frozen in it (first task): no entry
                entries[f"backbone.{name}.weight"] = FrozenEntries.entries(weight, frozen[name])
        for name, tensor in freeze_unowned(network, task).items():
            if isinstance(tensor, nn.Parameter):
                whole.append(tensor)
            else:
                entries[name] = FrozenEntries(tensor, tensor.detach().clone())
        held = tuple(parameter for parameter in whole if parameter.requires_grad)
        for parameter in held:
            parameter.grad = None
            parameter.requires_grad_(False)
        return cls(entries, held)

    def release(self) -> None:
        """Give back the `requires_grad` that `for_task` took."""
        for parameter in self.held:
            parameter.requires_grad_(True)
        self.held = ()

    def restore(self, *, parameters: bool = True) -> None:
        """Write every frozen value back (after an optimizer step); `parameters=False` writes
        back only buffers (after `zero_gradients`, under an optimizer for which
        `zero_gradient_moves_nothing`)."""
        for frozen in self.entries.values():
            if parameters or not isinstance(frozen.target, nn.Parameter):
                frozen.restore()

    def zero_gradients(self) -> None:
        """Every frozen entry's gradient to +0.0 (between the backward pass and the step)."""
        for frozen in self.entries.values():
            frozen.zero_gradient()


class OptimizerScope:
    """An optimizer's parameter groups without the parameters a task holds frozen, and back.

    torch's optimizers skip a parameter without a gradient, but `step` and `zero_grad` still
    visit every parameter of every group: with a head per task, a thousand tasks' heads each
    step. Taken out of the groups while the task trains (`narrow`), they cost nothing; `widen`
    puts every group back as it was, same parameters in the same order, so that the optimizer
    is the one its owner set up (its state, keyed by parameter, is never touched).
    """

    def __init__(self) -> None:
        self._optimizer: torch.optim.Optimizer | None = None
        self._groups: list[list[nn.Parameter]] = []

    def narrow(self, optimizer: torch.optim.Optimizer, frozen: Iterable[nn.Parameter]) -> None:
        """Take the `frozen` parameters out of every group of `optimizer`, after putting
        back what an earlier `narrow` took (a task that ended before its `widen`)."""
        self.widen()
        ids = {id(parameter) for parameter in frozen}
        self._optimizer = optimizer
        self._groups = [group["params"] for group in optimizer.param_groups]
        for group in optimizer.param_groups:
            group["params"] = [p for p in group["params"] if id(p) not in ids]

    def widen(self) -> None:
        """Put back the groups `narrow` changed; nothing when none is narrowed."""
        if self._optimizer is None:
            return
        for group, parameters in zip(self._optimizer.param_groups, self._groups, strict=True):
            group["params"] = parameters
        self._optimizer, self._groups = None, []
