"""The WSN paper's capacity, one definition for every mask method (Kang et al., ICML 2022):

    CAP = (share of the dense network's maskable weights used by any task)
        + (bits of every task's mask storage) / (32 bits × those weights)

so a network with float32 weights and no masks is at most 1, and masks add their storage.
Here the storage is counted as stored, uncompressed (the paper Huffman-codes its masks, ≈ 78%
at 7 bits, so its published figures for WSN and SupSup are lower by that).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from clearn.network import PackedNetwork
from clearn.subnet_network import SubnetNetwork
from clearn.task_mask import FREE

__all__ = [
    "FLOAT_BITS",
    "mask_capacity",
    "network_mask_capacity",
    "ownership_mask_capacity",
    "subnet_mask_capacity",
]

FLOAT_BITS = 32
"""Bits of one dense weight (float32), the unit of the storage share."""


def mask_capacity(*, used: int, total: int, mask_bits: int) -> float:
    """CAP of `used` weights out of `total` with `mask_bits` bits of masks in all."""
    if total <= 0:
        raise ValueError(f"capacity needs a positive number of weights, got total={total}")
    if not 0 <= used <= total or mask_bits < 0:
        raise ValueError(
            f"used weights must be in 0..total and mask bits non-negative, got used={used}, "
            f"total={total}, mask_bits={mask_bits}"
        )
    return used / total + mask_bits / (FLOAT_BITS * total)


def ownership_mask_capacity(
    owners: Sequence[Tensor], *, tasks: int, first_task_code: int = FREE + 1
) -> float:
    """CAP of owner-code masks (clearn's TaskMask, Avalanche's PackNet): used = owned by one of
    the `tasks` trained tasks (codes first_task_code..first_task_code+tasks−1); storage = the
    owner code's bits per weight as stored (8 for uint8, 16 for int16), whatever the tasks."""
    total = sum(o.numel() for o in owners)
    used = sum(
        int(((o >= first_task_code) & (o < first_task_code + tasks)).sum()) for o in owners
    )
    bits = sum(o.numel() * o.element_size() * 8 for o in owners)
    return mask_capacity(used=used, total=total, mask_bits=bits)


def subnet_mask_capacity(network: SubnetNetwork) -> float:
    """CAP of a SubnetNetwork: used = M_T, the OR of every trained task's mask; storage = one
    bit per task per weight (the scores, needed only while a task trains, not counted)."""
    total = sum(mask.scores.numel() for mask in network.masks.values())
    used = sum(int(m.sum()) for m in network.used_masks().values())
    return mask_capacity(used=used, total=total, mask_bits=network.trained_tasks * total)


def network_mask_capacity(network: PackedNetwork) -> float:
    """CAP of a clearn network: subnet masks or owner codes, whichever it carries."""
    if isinstance(network, SubnetNetwork):
        return subnet_mask_capacity(network)
    return ownership_mask_capacity(
        [mask.owner for mask in network.masks.values()], tasks=network.trained_tasks
    )
