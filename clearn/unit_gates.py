"""HAT's unit gates (Serrà et al., ICML 2018): per task, one learnt embedding value per output
unit of each Linear/Conv layer; the layer's output is multiplied by the gate σ(s·e).

A gate is a forward hook on the layer (or on the BatchNorm right after it, which would
otherwise normalise the gating away), not a weight parametrization: the gate scales the
layer's *outputs*, the weights stay plain tensors whose gradients HAT masks, and the same hook
works on Linear, Conv and BatchNorm layers of any backbone without touching their code.
Removing the hooks gives the plain backbone back. HAT's code gates after the ReLU, dropout and
max-pooling that follow a layer; a gate ≥ 0 per unit commutes with each of them, so gating the
layer's output is the same network.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from clearn.task_norm import TaskBatchNorm

__all__ = ["INPUT", "UnitGate", "annealed_scale", "gate_sites", "trace_sources", "unit_count"]

INPUT = "<input>"
"""Source name of the backbone's own input (a layer fed by it has input-side gate 1)."""


def unit_count(layer: nn.Module) -> int:
    """Output units of a Linear layer (features) or a Conv layer (channels)."""
    if isinstance(layer, nn.Linear):
        return layer.out_features
    if getattr(layer, "groups", 1) != 1:
        raise ValueError(
            f"HAT gates convolutions with groups=1 only, got groups={layer.groups}: a grouped "
            f"convolution's input channels do not line up with the previous layer's gates"
        )
    return int(layer.out_channels)


def annealed_scale(step: int, steps: int, s_max: float) -> float:
    """HAT's s for batch `step` (0-based) of `steps` in an epoch: 1/s_max at the first batch
    rising linearly to s_max at the last (Serrà et al. 2018, eq. 3); s_max for one batch."""
    if steps < 1 or not 0 <= step < steps:
        raise ValueError(f"step must be in [0, steps) with steps ≥ 1, got {step} of {steps}")
    if steps == 1:
        return float(s_max)
    return 1.0 / s_max + (s_max - 1.0 / s_max) * step / (steps - 1)


class UnitGate(nn.Module):
    """The embeddings of one gated layer, one vector per task, and its cumulative gate."""

    def __init__(self, *, units: int, channel_dim: int) -> None:
        super().__init__()
        self.units = units
        self.channel_dim = channel_dim
        """Dimension of the site's output holding the units (-1 for Linear, 1 otherwise)."""
        self.embeddings = nn.ParameterList()
        """e_t of each task, shape (units,), drawn N(0, 1) as nn.Embedding's in HAT's code."""
        self.cumulative: Tensor
        """a_{≤t} = max over trained tasks of σ(s_max·e_t), the gradient mask's source."""
        self.register_buffer("cumulative", torch.zeros(units))
        self.view_task: int | None = None
        """Task whose gate multiplies the output; None leaves the output ungated."""
        self.scale: float = 1.0
        """s of the view (set by HatNetwork.select: annealed while training, else s_max)."""

    def add_task(self) -> int:
        """Draw the next task's embedding; return its task number."""
        device = self.cumulative.device
        self.embeddings.append(nn.Parameter(torch.randn(self.units, device=device)))
        return len(self.embeddings) - 1

    def gate(self, task: int, scale: float) -> Tensor:
        """σ(scale·e_task), shape (units,)."""
        return torch.sigmoid(scale * self.embeddings[task])

    def shaped(self, values: Tensor, output: Tensor) -> Tensor:
        """`values` (units,) shaped to broadcast over `output` along the unit dimension."""
        shape = [1] * output.dim()
        shape[self.channel_dim] = self.units
        return values.view(shape)

    def hook(self, module: nn.Module, inputs: tuple, output: Tensor) -> Tensor:
        """Forward hook: the site's output times the view's gate."""
        if self.view_task is None:
            return output
        return output * self.shaped(self.gate(self.view_task, self.scale), output)


def gate_sites(backbone: nn.Module, layers: dict[str, nn.Module]) -> dict[str, str]:
    """For each layer (by name), the name of the module whose output its gate multiplies: the
    layer itself, or the (Task)BatchNorm registered right after it in the same parent with as
    many features (ResNet's conv → bn), since normalisation would undo a gate before it."""
    modules = dict(backbone.named_modules())
    sites = {}
    for name in layers:
        parent_name, _, child = name.rpartition(".")
        siblings = list(modules[parent_name].named_children())
        names = [n for n, _ in siblings]
        position = names.index(child)
        site = name
        if position + 1 < len(siblings):
            after_name, after = siblings[position + 1]
            norm = after.norms[0] if isinstance(after, TaskBatchNorm) else after
            if isinstance(norm, nn.modules.batchnorm._BatchNorm) and norm.num_features == (
                unit_count(layers[name])
            ):
                site = f"{parent_name}.{after_name}" if parent_name else after_name
        sites[name] = site
    return sites


def _marked_sources(node, marks: dict, leaf: Tensor) -> set[str]:
    """Names of the marked nodes (gate sites) and INPUT reached backwards from `node`."""
    found: set[str] = set()
    stack, seen = [node], set()
    while stack:
        current = stack.pop()
        if current is None or current in seen:
            continue
        seen.add(current)
        if current in marks:
            found.add(marks[current])
        elif hasattr(current, "variable"):  # a leaf: the input, or a parameter (ignored)
            if current.variable is leaf:
                found.add(INPUT)
        else:
            stack.extend(next_node for next_node, _ in current.next_functions)
    return found


def trace_sources(
    backbone: nn.Module, layers: dict[str, nn.Module], sites: dict[str, str], example: Tensor
) -> dict[str, frozenset[str]]:
    """For each layer, the layers whose gated outputs feed its input (INPUT for the backbone's
    input), read from the autograd graph of one forward pass of `example`: a chain, a
    residual sum (several sources) or a flatten between a Conv and a Linear alike."""
    modules = dict(backbone.named_modules())
    marks: dict = {}
    feeds: dict = {}
    leaf = example.detach().clone().requires_grad_(True)
    handles: list[RemovableHandle] = []

    def mark(layer: str) -> Callable:
        def hook(module: nn.Module, inputs: tuple, output: Tensor) -> None:
            marks.setdefault(output.grad_fn, layer)

        return hook

    def feed(layer: str) -> Callable:
        def hook(module: nn.Module, inputs: tuple) -> None:
            feeds.setdefault(layer, inputs[0])

        return hook

    for layer, site in sites.items():
        handles.append(modules[site].register_forward_hook(mark(layer)))
        handles.append(layers[layer].register_forward_pre_hook(feed(layer)))
    try:
        with torch.enable_grad():
            backbone(leaf)
    finally:
        for handle in handles:
            handle.remove()
    sources = {}
    for layer, tensor in feeds.items():
        found = {INPUT} if tensor is leaf else _marked_sources(tensor.grad_fn, marks, leaf)
        sources[layer] = frozenset(found or {INPUT})
    return sources
