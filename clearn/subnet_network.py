"""A shared backbone with a binary mask per task per weight (WSN, SupSup) and a head per task.

The same network as `PackedNetwork` — per-task heads, mixed-task batches, per-task BatchNorm,
`clearn.export_task`, `clearn.infer_task` (SupSup's one-shot included) — with `SubnetMask`s on
the shared layers in place of ownership codes. Task j is answered by w ⊙ m_j and head j.

- "wsn" (Winning SubNetworks, Kang et al., ICML 2022): weights and scores train; weights that
  an earlier task selected stay frozen (`SubnetTrainer`); the scores are kept across tasks.
- "supsup" (Supermasks in Superposition, Wortsman et al., NeurIPS 2020): the weights are fixed
  at the signed Kaiming constant and never train; each task learns fresh scores.

Subnet layers have no bias (as both papers' subnet layers): the backbone's Linear/Conv biases
are removed when the network is built; BatchNorm layers stay (per task with `per_task_norm`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Literal, get_args

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from clearn.capacity import Capacity
from clearn.network import PackedNetwork
from clearn.powerprop import prunable_layers
from clearn.subnet_mask import SubnetMask, check_density, unpack_bits

__all__ = [
    "DEFAULT_SUPSUP_DENSITY",
    "DEFAULT_WSN_DENSITY",
    "SUBNET_METHODS",
    "WSN_PMNIST_DENSITIES",
    "SubnetMethod",
    "SubnetNetwork",
    "signed_kaiming_constant_",
]

SubnetMethod = Literal["wsn", "supsup"]
SUBNET_METHODS: tuple[str, ...] = get_args(SubnetMethod)

DEFAULT_WSN_DENSITY = 0.5  # WSN (Kang et al. 2022) Table 2: c = 0.5 on split CIFAR-100
WSN_PMNIST_DENSITIES = (0.03, 0.1, 0.3)  # WSN Table 1: its permuted-MNIST operating points
DEFAULT_SUPSUP_DENSITY = 0.5  # RAIVNLab/supsup args.py: --sparsity 0.5 (top-k share kept)


@torch.no_grad()
def signed_kaiming_constant_(layer: nn.Module, generator: torch.Generator | None = None) -> None:
    """SupSup's "signed Kaiming constant": every weight ±std with a random sign, std =
    gain/√fan_in of Kaiming normal (ReLU gain √2, RAIVNLab/supsup models/init.py)."""
    weight = layer.weight
    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(weight)
    std = nn.init.calculate_gain("relu") / math.sqrt(fan_in)
    signs = torch.randint(0, 2, weight.shape, generator=generator).to(weight) * 2 - 1
    weight.copy_(signs * std)


class SubnetNetwork(PackedNetwork):
    """backbone → head[task]; each Linear/Conv weight of the backbone carries a SubnetMask.

    `method` "wsn" or "supsup"; `density` is the share c (WSN) or k (SupSup) of each layer's
    weights a task's mask selects (default: the paper's, `DEFAULT_WSN_DENSITY`,
    `DEFAULT_SUPSUP_DENSITY`). `seed` draws SupSup's weight signs and the first scores.
    """

    def __init__(
        self,
        *,
        backbone: nn.Module,
        method: SubnetMethod = "wsn",
        density: float | None = None,
        feature_size: int | None = None,
        classes_per_task: Sequence[int] = (),
        per_task_norm: bool = False,
        seed: int = 0,
    ) -> None:
        if method not in SUBNET_METHODS:
            raise ValueError(f"method must be one of {', '.join(SUBNET_METHODS)}, got {method!r}")
        if density is None:
            density = DEFAULT_WSN_DENSITY if method == "wsn" else DEFAULT_SUPSUP_DENSITY
        density = check_density(density)
        generator = torch.Generator().manual_seed(seed)
        for _, layer in prunable_layers(backbone):
            if layer.bias is not None:
                layer.register_parameter("bias", None)  # subnet layers have no bias
            if method == "supsup":
                signed_kaiming_constant_(layer, generator)
        super().__init__(
            backbone=backbone,
            feature_size=feature_size,
            classes_per_task=classes_per_task,
            alpha=1.0,
            per_task_norm=per_task_norm,
        )
        self.method: SubnetMethod = method
        self.density = density
        """Share of each layer's weights one task's mask selects."""
        for mask in self.masks.values():
            mask.density = density
            mask.reset_scores(generator)
        if method == "supsup":
            for weight in self.masked_weights().values():
                weight.requires_grad_(False)

    def _add_masks(self, backbone: nn.Module, layers: dict[str, nn.Module]) -> dict:
        masks = {}
        for name, layer in layers.items():
            mask = SubnetMask(layer.weight.shape).to(layer.weight.device)
            parametrize.register_parametrization(layer, "weight", mask)
            masks[name] = mask
        return masks

    def _point_masks(self, task: int | None) -> None:
        """Point every mask at task `task`: its stored mask, or the live mask of the scores
        while it trains; None shows all weights."""
        live = task is not None and task == self.training_task
        for mask in self.masks.values():
            mask.view_task = None if live else task
            mask.live = live

    def _superpose(self, alpha: Tensor | None) -> None:
        """Weights times Σ_t α_t m_t (SupSup's superposed masks); None ends the mix."""
        for mask in self.masks.values():
            mask.superposition = None if alpha is None else alpha.to(mask.bits.device)

    def used_masks(self, tasks: int | None = None) -> dict[str, Tensor]:
        """M = OR of the masks of tasks 0..tasks-1 (all trained), per layer."""
        count = self.trained_tasks if tasks is None else tasks
        return {name: mask.union(count) for name, mask in self.masks.items()}

    def capacity(self) -> Capacity:
        """Per trained task, the share of the masked weights that it was first to select;
        free: the share no task selected."""
        total = sum(mask.scores.numel() for mask in self.masks.values())
        owned, used = [], 0
        for task in range(self.trained_tasks):
            now = 0
            for mask in self.masks.values():
                packed = functools.reduce(torch.bitwise_or, mask.bits[: task + 1].unbind(0))
                now += int(unpack_bits(packed, mask.scores.shape).sum())
            owned.append((now - used) / total)
            used = now
        return Capacity(owned=tuple(owned), free=1.0 - used / total)

    def get_extra_state(self) -> dict:
        return {**super().get_extra_state(), "method": self.method, "density": self.density}

    def set_extra_state(self, state: dict) -> None:
        saved = (state.get("method"), state.get("density"))
        if saved != (self.method, self.density):
            raise ValueError(
                f"checkpoint was saved by a {saved[0]} network of density {saved[1]}, this is "
                f"{self.method} of density {self.density}: build the network alike"
            )
        super().set_extra_state(state)
