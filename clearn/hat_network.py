"""A shared backbone with HAT unit gates, per-task BatchNorm and one output head per task."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from clearn.powerprop import PRUNABLE_LAYER_TYPES, prunable_layers
from clearn.task_norm import TaskBatchNorm, add_task_norms
from clearn.unit_gates import UnitGate, gate_sites, trace_sources, unit_count
from clearn.views import TaskViews

__all__ = ["DEFAULT_S_MAX", "HatNetwork", "UnitScale"]

DEFAULT_S_MAX = 400.0  # joansj/hat src/approaches/hat.py (Appr: smax=400, grid-searched)


class UnitScale(nn.Module):
    """A fixed per-unit factor on a layer's output: a task's gate frozen into its export."""

    def __init__(self, scale: Tensor, *, channel_dim: int) -> None:
        super().__init__()
        self.channel_dim = channel_dim
        self.scale: Tensor
        self.register_buffer("scale", scale.detach().clone())

    def forward(self, x: Tensor) -> Tensor:
        shape = [1] * x.dim()
        shape[self.channel_dim] = len(self.scale)
        return x * self.scale.view(shape)


def _gate_key(layer: str) -> str:
    return layer.replace(".", ":")  # ModuleDict keys may not hold dots


class HatNetwork(TaskViews):
    """backbone → head[task], each Linear/Conv layer's output units gated per task (HAT).

    Task j is answered with its gates at s_max, σ(s_max·e_j); the task being trained
    (`training_task`, in training mode) with the annealed `scale`. Every BatchNorm is per task
    (`TaskBatchNorm`): HAT protects weights, not normalisation statistics. Tasks are numbered
    from 0, as Avalanche's task labels.
    """

    def __init__(
        self,
        *,
        backbone: nn.Module,
        feature_size: int | None = None,
        classes_per_task: Sequence[int] = (),
        s_max: float = DEFAULT_S_MAX,
    ) -> None:
        super().__init__()
        if not s_max >= 1.0:
            raise ValueError(f"s_max must be at least 1 (HAT's is 400), got {s_max}")
        if classes_per_task and feature_size is None:
            raise ValueError(
                "heads built up front (classes_per_task) need feature_size, the width of the "
                "backbone's output; or leave both out and add heads with add_head"
            )
        self.layers: dict[str, nn.Module] = dict(prunable_layers(backbone))
        """The gated Linear/Conv layers of the backbone, by name (not a submodule list)."""
        if not self.layers:
            raise ValueError(
                f"the backbone has no {'/'.join(t.__name__ for t in PRUNABLE_LAYER_TYPES)} "
                f"layer to gate"
            )
        self._plain_backbone = [copy.deepcopy(backbone).to("meta")]
        self.backbone = backbone
        self.norms: dict[str, TaskBatchNorm] = add_task_norms(backbone)
        """Each BatchNorm layer's per-task copies, by layer name."""
        self.sites: dict[str, str] = gate_sites(backbone, self.layers)
        """For each layer, the module whose output its gate multiplies."""
        modules = dict(backbone.named_modules())
        self.gates = nn.ModuleDict()
        for name, layer in self.layers.items():
            site = modules[self.sites[name]]
            channel_dim = -1 if isinstance(site, nn.Linear) else 1
            gate = UnitGate(units=unit_count(layer), channel_dim=channel_dim)
            self.gates[_gate_key(name)] = gate
            site.register_forward_hook(gate.hook)
        self.s_max = float(s_max)
        self.scale = self.s_max
        """s of the training task's gates in training mode (annealed per batch by HAT)."""
        self.feature_size = feature_size
        self.heads = nn.ModuleList()
        for classes in classes_per_task:
            self.add_head(classes)
        self.trained_tasks = 0
        """Tasks 0..trained_tasks-1 are trained; their gates are in the cumulative gates."""
        self.training_task: int | None = None
        self.sources: dict[str, frozenset[str]] | None = None
        """Which layers feed each layer (`trace_sources`), traced at the first forward pass."""

    def gate(self, layer: str) -> UnitGate:
        """The UnitGate of layer `layer`."""
        return self.gates[_gate_key(layer)]

    @torch.no_grad()
    def add_head(self, classes: int, *, example: Tensor | None = None) -> int:
        """Add the next task's head (and its embeddings); return its task number. The first
        head needs `feature_size` or an `example` batch to measure the backbone's width."""
        if classes < 1:
            raise ValueError(f"a head needs at least one class, got {classes}")
        if self.feature_size is None:
            if example is None:
                raise ValueError(
                    "the backbone's output width is not known yet: pass feature_size when "
                    "building the network, or an example batch to add_head"
                )
            was_training = self.training
            self.eval()
            with self.viewing(None):
                self.feature_size = int(self.backbone(example).flatten(1).shape[1])
            self.train(was_training)
        device = next(self.backbone.parameters()).device
        self.heads.append(nn.Linear(self.feature_size, classes).to(device))
        for gate in self.gates.values():
            gate.add_task()
        for norm in self.norms.values():
            norm.ensure(len(self.heads))
        return len(self.heads) - 1

    def get_extra_state(self) -> dict:
        return {"trained_tasks": self.trained_tasks, "s_max": self.s_max,
                "feature_size": self.feature_size}  # fmt: skip

    def set_extra_state(self, state: dict) -> None:
        self.trained_tasks = int(state["trained_tasks"])
        self.s_max = float(state["s_max"])
        self.feature_size = state["feature_size"]

    def _point_masks(self, task: int | None) -> None:
        """Gate every layer with task `task`'s view (None: ungated): the training task's
        gates at the annealed `scale` in training mode, every other at s_max."""
        annealing = self.training and task is not None and task == self.training_task
        for gate in self.gates.values():
            gate.view_task = task
            gate.scale = self.scale if annealing else self.s_max

    def forward_task(self, inputs: Tensor, task: int, *, allow_untrained: bool = False) -> Tensor:
        """Logits of head `task` for a batch that belongs entirely to that task."""
        self.check_task(task, allow_untrained=allow_untrained)
        if self.sources is None:
            self.trace(inputs[:1])
        with self.viewing(task):
            features = self.backbone(inputs)
        return self.heads[task](features.flatten(1))

    def forward(
        self, inputs: Tensor, task_labels: Tensor | int | None, *, allow_untrained: bool = False
    ) -> Tensor:
        """Logits for a batch whose examples may belong to different tasks: each task's
        examples go through its own gates and head, rows zero-padded to the widest head."""
        if task_labels is None:
            raise ValueError(
                "HAT answers task-aware queries only: pass the task label of the batch or of "
                "each example (its task-agnostic inference is not implemented)"
            )
        return super().forward(inputs, task_labels, allow_untrained=allow_untrained)

    @torch.no_grad()
    def trace(self, example: Tensor) -> None:
        """Find which layers feed each layer (`sources`) from one ungated pass of `example`."""
        was_training = self.training
        self.eval()  # no BatchNorm statistics move
        try:
            with self.viewing(None):
                self.sources = trace_sources(self.backbone, self.layers, self.sites, example)
        finally:
            self.train(was_training)

    @torch.no_grad()
    def export_task(self, task: int) -> nn.Sequential:
        """A plain dense copy of task `task`'s network: the backbone with each gate at s_max
        fixed as a `UnitScale` after its site, then its head; the same logits bit for bit."""
        self.check_task(task)
        state = dict(self.backbone.state_dict())
        for name in self.norms:  # the task's own BatchNorm, under the plain layer's name
            prefix, own = f"{name}.norms.", f"{name}.norms.{task}."
            for key in [k for k in state if k.startswith(prefix)]:
                value = state.pop(key)
                if key.startswith(own):
                    state[f"{name}.{key.removeprefix(own)}"] = value
        device = next(self.parameters()).device
        backbone = copy.deepcopy(self._plain_backbone[0]).to_empty(device=device)
        backbone.load_state_dict(state)
        modules = dict(backbone.named_modules())
        for layer, site in self.sites.items():
            gate = self.gate(layer)
            parent, _, child = site.rpartition(".")
            scale = UnitScale(gate.gate(task, self.s_max), channel_dim=gate.channel_dim)
            setattr(modules[parent], child, nn.Sequential(modules[site], scale))
        exported = nn.Sequential(backbone, nn.Flatten(), copy.deepcopy(self.heads[task]))
        return exported.train(self.training)
