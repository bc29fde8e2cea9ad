"""Binary subnetwork masks: one bit per task per weight, chosen by learnt scores (edge-popup).

A `SubnetMask` is a `torch.nn.utils.parametrize` parametrization on a layer's weight, the
mask kind of WSN (Kang et al., ICML 2022) and SupSup (Wortsman et al., NeurIPS 2020). It
holds a score tensor s the shape of the weight; the task being trained uses the weight times
m = the top `density` share of |s| in the layer, and the scores learn through a
straight-through estimator (Ramanujan et al.'s edge-popup: the mask's gradient goes to |s|
unchanged). Each trained task's mask is stored packed, 8 weights a byte.

Storage per weight: 1 bit per trained task (T/8 bytes), plus the float32 score (4 bytes)
while tasks train; the scores are not needed to answer a trained task.
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict

import torch
from torch import Tensor, nn

from clearn.bits import keep_bits, keep_visible

__all__ = ["SubnetMask", "check_density", "pack_bits", "top_share", "unpack_bits"]

VIEW_CACHE_SIZE = 4
"""Unpacked per-task views kept per layer (as wide as a weight); older ones are rebuilt."""

_BIT_WEIGHTS = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8)


def check_density(density: float) -> float:
    """`density` if it is a share in (0, 1], else ValueError."""
    if isinstance(density, bool) or not 0.0 < float(density) <= 1.0:
        raise ValueError(
            f"the mask density (share of each layer's weights a task uses) must be in (0, 1], "
            f"got {density!r}"
        )
    return float(density)


def pack_bits(mask: Tensor) -> Tensor:
    """A boolean tensor as uint8 bytes, 8 entries a byte (flattened, zero-padded at the end)."""
    flat = mask.flatten().to(torch.uint8)
    flat = nn.functional.pad(flat, (0, -len(flat) % 8))
    return (flat.view(-1, 8) * _BIT_WEIGHTS.to(flat.device)).sum(1, dtype=torch.uint8)


def unpack_bits(packed: Tensor, shape: torch.Size) -> Tensor:
    """The boolean tensor of `shape` that `pack_bits` packed into `packed`."""
    bits = packed.unsqueeze(1).bitwise_and(_BIT_WEIGHTS.to(packed.device)) != 0
    return bits.flatten()[: math.prod(shape)].view(shape)


def top_share(scores: Tensor, density: float) -> Tensor:
    """Boolean mask of exactly round(density · n) entries (at least one) of the largest
    |scores|; ties broken by torch.topk."""
    count = max(1, round(density * scores.numel()))
    mask = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
    mask[scores.detach().abs().flatten().topk(count, sorted=False).indices] = True
    return mask.view(scores.shape)


class _StraightThroughTopShare(torch.autograd.Function):
    """Forward: the top-share mask of |s| as floats; backward: the gradient passed to s
    through |s| unchanged (edge-popup's straight-through estimator)."""

    @staticmethod
    def forward(ctx, scores: Tensor, density: float) -> Tensor:  # noqa: D102
        ctx.save_for_backward(scores)
        return top_share(scores, density).to(scores.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # noqa: D102
        (scores,) = ctx.saved_tensors
        return grad * scores.sign(), None


class SubnetMask(nn.Module):
    """Parametrization w ↦ w ⊙ m: m the selected task's stored mask, the live top-share mask
    of the scores while a task trains, or a mix of stored masks (one-shot inference)."""

    def __init__(self, shape: torch.Size, *, density: float = 0.5) -> None:
        super().__init__()
        self.density = check_density(density)
        """Share of the layer's weights each task's mask selects."""
        self.scores = nn.Parameter(torch.empty(shape))
        """Learnt score of each weight; a task's mask is the top `density` share of |s|."""
        self.reset_scores()
        self.bits: Tensor
        """Packed mask of each trained task: row t holds task t's bits (`pack_bits`)."""
        packed_width = math.ceil(math.prod(shape) / 8)
        self.register_buffer("bits", torch.zeros(0, packed_width, dtype=torch.uint8))
        self.view_task: int | None = None
        """Task (0-based) whose stored mask is used; None shows every weight."""
        self.live = False
        """Whether the live mask of the scores is used (the task being trained)."""
        self.superposition: Tensor | None = None
        """A coefficient per trained task: the weight times Σ_t α_t m_t (replaces the view)."""
        self._views: OrderedDict[int, Tensor] = OrderedDict()

    @property
    def tasks(self) -> int:
        """Number of stored task masks."""
        return self.bits.shape[0]

    @torch.no_grad()
    def reset_scores(self, generator: torch.Generator | None = None) -> None:
        """Draw fresh scores, as edge-popup and SupSup do: kaiming_uniform(a=√5)."""
        fresh = torch.empty(self.scores.shape)
        nn.init.kaiming_uniform_(fresh, a=math.sqrt(5), generator=generator)
        self.scores.copy_(fresh)

    def forward(self, weight: Tensor) -> Tensor:
        """The weight under the current view."""
        if self.superposition is not None:
            masks = torch.stack([self.mask(t) for t in range(self.tasks)]).to(weight.dtype)
            return weight * torch.tensordot(self.superposition.to(weight.dtype), masks, 1)
        if self.live:
            return weight * _StraightThroughTopShare.apply(self.scores, self.density)
        if self.view_task is None:
            return weight
        return keep_visible(weight, self._view_bits(self.view_task, weight))

    def mask(self, task: int) -> Tensor:
        """Boolean mask of trained task `task`."""
        if not 0 <= task < self.tasks:
            raise ValueError(f"this layer stores masks of tasks 0..{self.tasks - 1}, not {task}")
        return unpack_bits(self.bits[task], self.scores.shape)

    def live_mask(self) -> Tensor:
        """Boolean top-share mask of the current scores (what `store` would keep)."""
        return top_share(self.scores, self.density)

    def union(self, tasks: int | None = None) -> Tensor:
        """Boolean OR of the masks of tasks 0..tasks-1 (all stored ones by default)."""
        count = self.tasks if tasks is None else tasks
        if count == 0:
            return torch.zeros(self.scores.shape, dtype=torch.bool, device=self.bits.device)
        packed = functools.reduce(torch.bitwise_or, self.bits[:count].unbind(0))
        return unpack_bits(packed, self.scores.shape)

    @torch.no_grad()
    def store(self, task: int) -> Tensor:
        """Keep the live mask as task `task`'s (the next task in order); return it."""
        if task != self.tasks:
            raise ValueError(
                f"masks are stored in task order: expected task {self.tasks}, got {task}"
            )
        mask = self.live_mask()
        self.bits = torch.cat([self.bits, pack_bits(mask).unsqueeze(0)])
        self._views.clear()
        return mask

    def _view_bits(self, task: int, weight: Tensor) -> Tensor:
        bits = self._views.get(task)
        if bits is None or bits.element_size() != weight.element_size():
            bits = keep_bits(self.mask(task), weight)
            self._views[task] = bits
            if len(self._views) > VIEW_CACHE_SIZE:
                self._views.popitem(last=False)
        self._views.move_to_end(task)
        return bits

    def _apply(self, fn, recurse: bool = True):
        self._views.clear()  # .to(device) replaces the bits: views built from them go
        return super()._apply(fn, recurse)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # A checkpoint holds as many task masks as it had trained: adopt its row count.
        saved = state_dict.get(prefix + "bits")
        if saved is not None and saved.shape != self.bits.shape:
            self.bits = torch.empty_like(saved, device=self.bits.device)
        self._views.clear()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
