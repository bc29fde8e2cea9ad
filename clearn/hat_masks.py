"""From HAT's unit gates to weights: the gradient mask of earlier tasks, and capacity.

A weight w_ij of layer l joins output unit i of l to input unit j, the output unit of the
layer(s) feeding l (`HatNetwork.sources`; the backbone's input counts as always on). Storage:
one float32 embedding value per unit per layer per task (unit masks, not weight masks), plus
one float32 cumulative gate per unit: 4·(T + 1)·U bytes for U units, i.e. 4·(T + 1)·U/W bytes
per weight of W (MLP 784-100-100: U = 200, W = 88,400, 0.009 bytes per weight per task).
"""

from __future__ import annotations

import torch
from torch import Tensor

from clearn.hat_network import HatNetwork
from clearn.unit_gates import INPUT

__all__ = [
    "hat_capacity",
    "hat_storage_fraction",
    "hat_used_fraction",
    "input_side",
    "weight_factors",
    "weight_values",
]


def input_side(network: HatNetwork, layer: str, values: dict[str, Tensor]) -> Tensor:
    """Per input unit of `layer`, the largest of `values` (one vector per layer, by name) of
    the layers feeding it — repeated per position when a flatten lies between (channel-major,
    as HAT's AlexNet) — or ones where the backbone's input feeds it."""
    module = network.layers[layer]
    width = module.in_features if hasattr(module, "in_features") else module.in_channels
    if network.sources is None:
        raise ValueError(
            "the network has not traced which layers feed which yet: run one forward pass "
            "(network.trace(example_batch)) first"
        )
    sources = network.sources.get(layer, frozenset({INPUT}))
    reference = values[layer]
    if INPUT in sources:
        return reference.new_ones(width)
    found = torch.stack([values[s] for s in sorted(sources)]).amax(0)
    if width == len(found):
        return found
    if width % len(found):
        raise ValueError(
            f"layer {layer} takes {width} inputs, the layers feeding it give {len(found)} "
            f"units: cannot line its input units up with their gates"
        )
    return found.repeat_interleave(width // len(found))


def weight_values(network: HatNetwork, layer: str, values: dict[str, Tensor]) -> Tensor:
    """min(values of the output unit, of the input unit) per weight of `layer`, its shape."""
    weight = network.layers[layer].weight
    out = values[layer].view(-1, *([1] * (weight.dim() - 1)))
    into = input_side(network, layer, values).view(1, -1, *([1] * (weight.dim() - 2)))
    return torch.minimum(out, into).expand_as(weight)


@torch.no_grad()
def weight_factors(network: HatNetwork) -> dict[str, tuple[Tensor, Tensor | None]]:
    """HAT's gradient factors while a task trains: 1 − min(a_<t,i, a_<t,j) per weight and
    1 − a_<t,i per bias, from the cumulative gates, by layer name (bias None without one)."""
    cumulative = {name: network.gate(name).cumulative for name in network.layers}
    factors = {}
    for name, layer in network.layers.items():
        weight = 1.0 - weight_values(network, name, cumulative)
        bias = None if layer.bias is None else 1.0 - cumulative[name]
        factors[name] = (weight.contiguous(), bias)
    return factors


@torch.no_grad()
def hat_used_fraction(network: HatNetwork) -> float:
    """Share of the gated layers' weights that some trained task uses: both units' gates at
    s_max above 1/2 for that task."""
    total = sum(layer.weight.numel() for layer in network.layers.values())
    used: dict[str, Tensor] = {}
    for task in range(network.trained_tasks):
        on = {
            name: (network.gate(name).gate(task, network.s_max) > 0.5).float()
            for name in network.layers
        }
        for name in network.layers:
            task_uses = weight_values(network, name, on) > 0
            used[name] = task_uses | used[name] if name in used else task_uses
    return sum(int(mask.sum()) for mask in used.values()) / total


def hat_storage_fraction(network: HatNetwork) -> float:
    """The trained tasks' embeddings (float32 per unit per task) as a share of the gated
    layers' float32 weights."""
    units = sum(gate.units for gate in network.gates.values())
    weights = sum(layer.weight.numel() for layer in network.layers.values())
    return network.trained_tasks * units / weights


def hat_capacity(network: HatNetwork) -> float:
    """The WSN paper's CAP for HAT: share of the weights any task uses plus the masks'
    storage as a share of the network's float32 weights (Kang et al., ICML 2022)."""
    return hat_used_fraction(network) + hat_storage_fraction(network)
