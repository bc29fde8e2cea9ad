"""Exact masking by bitwise operations: a float is kept bit for bit or becomes +0.0.

`torch.where` on a boolean mask branches per element on CPU, 4–12× slower than one bitwise
AND over the same memory read as integers (measured on a 784×300 layer, 14–80% masked);
`weight * mask` is as fast but not exact: NaN or ±inf outside the mask gives NaN·0 = NaN.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["as_bits", "keep_bits", "keep_visible"]

_SAME_WIDTH_INTEGER = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
"""Integer type of each element width, to read any tensor's memory as integers."""


def as_bits(tensor: Tensor) -> Tensor:
    """The same memory read as integers of the same width (no copy, any strides)."""
    return tensor.view(_SAME_WIDTH_INTEGER[tensor.element_size()])


def keep_bits(mask: Tensor, like: Tensor) -> Tensor:
    """All-ones bits where `mask` is True, all-zero bits elsewhere, as wide as `like`'s
    elements: `as_bits(x) & keep_bits(mask, x)` is x where `mask`, +0.0 elsewhere."""
    return mask.to(_SAME_WIDTH_INTEGER[like.element_size()]).neg_()


class _KeepVisible(torch.autograd.Function):
    """x where the bits are all ones, +0.0 elsewhere; the gradient masked alike."""

    @staticmethod
    def forward(ctx, weight: Tensor, bits: Tensor) -> Tensor:  # noqa: D102
        ctx.save_for_backward(bits)
        return torch.bitwise_and(as_bits(weight), bits).view(weight.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # noqa: D102
        (bits,) = ctx.saved_tensors
        return torch.bitwise_and(as_bits(grad), bits).view(grad.dtype), None


def keep_visible(weight: Tensor, bits: Tensor) -> Tensor:
    """`weight` where `bits` (from `keep_bits`) are ones, exactly +0.0 elsewhere, with the
    gradient of `torch.where(mask, weight, 0)`."""
    return _KeepVisible.apply(weight, bits)
