"""Task ownership of weights: which task owns each weight, and the per-task view it implies.

A `TaskMask` is a `torch.nn.utils.parametrize` parametrization, registered after Powerprop (if
any) on a layer's weight: it zeroes the weights the selected task may not use.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from clearn.bits import keep_bits, keep_visible
from clearn.capacity import Capacity, ownership_capacity

__all__ = [
    "FREE",
    "MAX_TASKS",
    "TaskMask",
    "add_task_masks",
    "owner_capacity",
    "owner_dtype_for",
    "superpose_masks",
    "task_masks",
]

FREE = 0
"""Owner code of a weight that no task owns yet."""

MAX_TASKS = torch.iinfo(torch.int16).max
"""Most tasks one network can hold (int16 owner codes)."""

_FIRST_CODE = FREE + 1
"""Owner code of task 0: task t is stored as t + 1, so that 0 can mean free. This module alone
knows the offset; every API here and outside takes 0-based task numbers."""


def _code(task: int) -> int:
    """Owner code of (0-based) task `task`."""
    return task + _FIRST_CODE

VIEW_CACHE_SIZE = 4
"""Per-task view masks kept per layer (as wide as a weight); older ones are rebuilt."""

MASKED_WEIGHT_CACHE_SIZE = 8
"""Masked weights kept per layer for inference (no autograd). Once full, views not yet cached
are computed per call instead of evicting: a stream evaluated task after task in mixed batches
cycles through its tasks, where least-recently-used eviction would never hit."""


def owner_dtype_for(task: int) -> torch.dtype:
    """Smallest integer type holding the owner code of (0-based) task `task`: uint8 for the
    first 254 tasks (0..253), then int16."""
    code = _code(task)
    if code <= torch.iinfo(torch.uint8).max - 1:
        return torch.uint8
    if code <= MAX_TASKS:
        return torch.int16
    raise ValueError(f"a network holds at most {MAX_TASKS} tasks, got task {task}")


class TaskMask(nn.Module):
    """Parametrization w ↦ w·[owner(w) visible to the selected view].

    The view is either task j at inference (weights owned by tasks 0..j), or a task being
    trained (also the free weights), or an explicit candidate mask during a pruning search.
    Tasks are numbered from 0 here as everywhere; the stored owner codes are task + 1.
    """

    def __init__(self, shape: torch.Size) -> None:
        super().__init__()
        self.owner: Tensor
        """Owner code of each weight: task + 1 for the task that owns it, FREE for none. Same
        shape as the weight; read it through `used`, `free` and `owned_up_to`."""
        self.register_buffer("owner", torch.zeros(shape, dtype=torch.uint8))
        self.view_task: int | None = None
        """Task (0-based) whose view is used; None shows every weight (the mask is a no-op)."""
        self.include_free: bool = False
        """Whether the view also shows free weights (while a task trains on them)."""
        self.candidate: Tensor | None = None
        """A boolean mask that replaces the view while a pruning candidate is evaluated."""
        self.superposition: Tensor | None = None
        """A coefficient per owner code that scales each weight (one-shot task inference:
        a differentiable mix of every task's view, `superpose_masks`); replaces the view."""
        self._views: OrderedDict[tuple[int, bool], Tensor | None] = OrderedDict()
        """`keep_bits` of each recent view (None: all visible), by (view_task, include_free)."""
        self._masked: dict[tuple[int, bool], tuple[Tensor, int, Tensor]] = {}
        """Inference cache per view: (the weight it was made from, its version, product)."""

    def forward(self, weight: Tensor) -> Tensor:
        """The weight with everything outside the current view set to zero."""
        if self.superposition is not None:
            return weight * self.superposition[self.owner.long()]
        if self.candidate is not None:
            return keep_visible(weight, keep_bits(self.candidate, weight))
        if torch.is_grad_enabled():
            bits = self._view_bits(weight)
            return weight if bits is None else keep_visible(weight, bits)
        key = (self.view_task, self.include_free)
        cached = self._masked.get(key)
        # The entry holds the weight tensor itself, so an identity match cannot be a new
        # tensor at a reused address; the version catches in-place updates. Looked up before
        # the view, which a stream of more tasks than VIEW_CACHE_SIZE would rebuild each time.
        if cached is not None and cached[0] is weight and cached[1] == weight._version:
            return cached[2]
        bits = self._view_bits(weight)
        if bits is None:
            return weight
        product = keep_visible(weight, bits)
        if cached is not None or len(self._masked) < MASKED_WEIGHT_CACHE_SIZE:
            self._masked[key] = (weight, weight._version, product)
        return product

    def visible(self) -> Tensor | None:
        """Boolean mask of the current view, or None when everything is visible."""
        if self.view_task is None:
            return None
        mask = self.owned_up_to(self.view_task)
        if self.include_free:
            mask |= self.free()
        return None if bool(mask.all()) else mask

    def used(self) -> Tensor:
        """Boolean mask of the weights some task owns."""
        return self.owner != FREE

    def free(self) -> Tensor:
        """Boolean mask of the weights no task owns."""
        return self.owner == FREE

    def owned_up_to(self, task: int) -> Tensor:
        """Boolean mask of the weights owned by tasks 0..task (none for task −1)."""
        return (self.owner != FREE) & (self.owner <= _code(task))

    def _view_bits(self, weight: Tensor) -> Tensor | None:
        """`keep_bits` of the current view for `weight` (cached per view), None if all shows."""
        if self.view_task is None:
            return None
        key = (self.view_task, self.include_free)
        if key in self._views:
            bits = self._views[key]
            if bits is None or bits.element_size() == weight.element_size():
                self._views.move_to_end(key)
                return bits
        visible = self.visible()
        bits = None if visible is None else keep_bits(visible, weight)
        self._views[key] = bits
        if len(self._views) > VIEW_CACHE_SIZE:
            self._views.popitem(last=False)
        return bits

    def _apply(self, fn, recurse: bool = True):
        # .to(device) / .half() replace the owner buffer: views built from the old one go.
        self._forget_views()
        return super()._apply(fn, recurse)

    def _forget_views(self) -> None:
        self._views.clear()
        self._masked.clear()

    @torch.no_grad()
    def assign(self, task: int, kept: Tensor) -> None:
        """Give the weights where `kept` is True to `task`, widening the owner type if needed."""
        dtype = owner_dtype_for(task)
        if torch.iinfo(dtype).max > torch.iinfo(self.owner.dtype).max:
            self.owner = self.owner.to(dtype)
        self.owner[kept] = _code(task)
        self._forget_views()

    @torch.no_grad()
    def release(self, task: int) -> None:
        """Make the weights owned by `task` free again."""
        self.owner[self.owner == _code(task)] = FREE
        self._forget_views()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # Owners saved past 254 tasks are int16; adopt the saved type instead of letting
        # load_state_dict cast them into uint8, which would wrap task numbers around.
        saved = state_dict.get(prefix + "owner")
        if saved is not None and saved.dtype != self.owner.dtype:
            self.owner = torch.empty_like(saved)
        self._forget_views()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def task_masks(model: nn.Module) -> dict[str, TaskMask]:
    """The TaskMask of every layer of `model` that has one, keyed by layer name."""
    found = {}
    for name, module in model.named_modules():
        if parametrize.is_parametrized(module, "weight"):
            for parametrization in module.parametrizations.weight:
                if isinstance(parametrization, TaskMask):
                    found[name] = parametrization
    return found


def add_task_masks(model: nn.Module, layers: dict[str, nn.Module]) -> dict[str, TaskMask]:
    """Register a TaskMask on the weight of each given layer (after any Powerprop)."""
    masks = {}
    for name, layer in layers.items():
        mask = TaskMask(layer.weight.shape).to(layer.weight.device)
        parametrize.register_parametrization(layer, "weight", mask)
        masks[name] = mask
    return masks


def owner_capacity(masks: Iterable[TaskMask], *, tasks: int) -> Capacity:
    """Share of the masks' weights owned by each of tasks 0..tasks-1, and the free share."""
    owners = [mask.owner for mask in masks]
    return ownership_capacity(owners, tasks=tasks, first_task_code=_FIRST_CODE)


def superpose_masks(masks: Iterable[TaskMask], alpha: Tensor | None) -> None:
    """Mix every trained task's view by `alpha` (one coefficient per trained task, on the
    CPU), differentiably; None ends the mix. A weight owned by task k counts Σ_{t≥k} α_t,
    the views being nested."""
    masks = list(masks)
    if alpha is None:
        for mask in masks:
            mask.superposition = None
        return
    top = max(int(m.owner.max()) for m in masks)
    later = torch.flip(torch.cumsum(torch.flip(alpha, [0]), 0), [0])  # Σ_{t≥k} α_t
    unused = alpha.new_zeros(max(top - len(alpha), 0))  # codes of tasks not trained
    coefficients = torch.cat([alpha.new_zeros(_FIRST_CODE), later, unused])
    coefficients = coefficients.to(masks[0].owner.device)
    for mask in masks:
        mask.superposition = coefficients
