"""A shared backbone with task masks and one output head per task, answering per-task queries.

The network holds the masked backbone, the heads and the view (which task the masks show);
task inference is in `clearn.task_inference`, export in `clearn.export`, the model of each
task's inputs in `clearn.task_density`, the packing lifecycle in `clearn.packing`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import nullcontext

import torch
from torch import Tensor, nn

from clearn.capacity import Capacity
from clearn.defaults import DEFAULT_ALPHA, DEFAULT_NORMALISE_STEP
from clearn.powerprop import PRUNABLE_LAYER_TYPES, apply_powerprop, prunable_layers, stored_weight
from clearn.task_density import TaskDensity
from clearn.task_mask import TaskMask, add_task_masks, owner_capacity, superpose_masks
from clearn.task_norm import TaskBatchNorm, add_task_norms
from clearn.views import TaskViews, UnknownTaskError

__all__ = ["PackedNetwork", "UnknownTaskError"]


def _checked_layers(
    backbone: nn.Module, classes_per_task: Sequence[int], feature_size: int | None
) -> dict[str, nn.Module]:
    """The backbone's Linear/Conv layers by name, once the constructor's arguments hold."""
    if any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in classes_per_task):
        raise ValueError(
            f"classes_per_task needs one positive class count per task, "
            f"got {list(classes_per_task)}"
        )
    if classes_per_task and feature_size is None:
        raise ValueError(
            "heads built up front (classes_per_task) need feature_size, the width of "
            "the backbone's output; or leave both out and add heads with add_head"
        )
    layers = dict(prunable_layers(backbone))
    if not layers:
        raise ValueError(
            f"the backbone has no {'/'.join(t.__name__ for t in PRUNABLE_LAYER_TYPES)} "
            f"layer to share between tasks"
        )
    return layers


def _check_features(features: Tensor, head: nn.Linear) -> None:
    if features.dim() != 2 or features.shape[1] != head.in_features:
        raise ValueError(
            f"the backbone gives features of shape {tuple(features.shape)}, the heads take "
            f"(batch, {head.in_features}): set feature_size to the backbone's output width "
            f"(and flatten its output)"
        )


def _older_layout(what: str) -> ValueError:
    return ValueError(
        f"this state dict is from an older clearn ({what}): train again, or load it with "
        f"the clearn that saved it"
    )


def _excluding(named: Iterable[tuple[str, Tensor]], ids: set[int]) -> dict:
    """The named tensors whose identity is not in `ids`."""
    return {name: tensor for name, tensor in named if id(tensor) not in ids}


class PackedNetwork(TaskViews):
    """backbone → head[task]; every Linear/Conv weight of the backbone carries a TaskMask.

    Tasks are numbered from 0 (as Avalanche's task labels). A query for task j uses only
    weights owned by tasks 0..j and head j, so its answers never change once task j is trained.
    `per_class_inputs`: each task's inputs modelled per class (`input_density`), which finds
    single examples' tasks more often on split streams, at a cost growing with the classes.
    """

    def __init__(
        self,
        *,
        backbone: nn.Module,
        feature_size: int | None = None,
        classes_per_task: Sequence[int] = (),
        alpha: float = DEFAULT_ALPHA,
        normalise_step: bool = DEFAULT_NORMALISE_STEP,
        per_task_norm: bool = False,
        per_class_inputs: bool = False,
    ) -> None:
        super().__init__()
        layers = _checked_layers(backbone, classes_per_task, feature_size)
        if alpha != 1.0:
            apply_powerprop(backbone, alpha=alpha, normalise_step=normalise_step)
        self.alpha = alpha
        self.backbone = backbone
        self.feature_size = feature_size
        """Width of the backbone's output, which every head reads; None until known."""
        self.heads = nn.ModuleList(nn.Linear(feature_size, c) for c in classes_per_task)
        """One output layer per task, in task order."""
        self.masks: dict[str, TaskMask] = self._add_masks(backbone, layers)
        """The mask of each backbone layer, by layer name (not a submodule list): a TaskMask
        here, another mask kind in subclasses (`_add_masks`)."""
        self.norms: dict[str, TaskBatchNorm] = add_task_norms(backbone) if per_task_norm else {}
        """With `per_task_norm`: each BatchNorm layer's per-task copies, by layer name."""
        for norm in self.norms.values():
            norm.ensure(len(self.heads))
        self.head_only = False
        """Whether the task being trained (`training_task`) trains its head alone, nothing of
        the backbone being its own (frozen features): its queries then run the backbone
        without autograd, which gives the same features bit for bit and computes the
        effective weights (Powerprop's, the masks') once for the task instead of at every
        step. Set by `TaskPacker`."""
        self.input_density = TaskDensity(per_class=per_class_inputs)
        """Per task, a probabilistic-PCA model of its training inputs (`record_inputs`; with
        `per_class_inputs`, one per class of the task, mixed): what the "inputs" task
        inference scores an input under."""

    def _add_masks(self, backbone: nn.Module, layers: dict[str, nn.Module]) -> dict:
        """Register the mask parametrization of each shared layer; return them by name.

        Called once from the constructor; a network with another mask kind overrides it
        (with `_point_masks`, `capacity` and `_superpose`)."""
        return add_task_masks(backbone, layers)

    @torch.no_grad()
    def add_head(self, classes: int, *, example: Tensor | None = None) -> int:
        """Add the next task's head with `classes` outputs; return its task number.

        The first head needs the backbone's output width: `feature_size` given at
        construction, else measured on `example` (a batch of inputs) in eval mode.
        """
        if classes < 1:
            raise ValueError(f"a head needs at least one class, got {classes}")
        if self.feature_size is None:
            if example is None:
                raise ValueError(
                    "the backbone's output width is not known yet: pass feature_size when "
                    "building the network, or an example batch to add_head"
                )
            was_training = self.backbone.training
            self.backbone.eval()
            with self.viewing(None):
                self.feature_size = int(self.backbone(example).flatten(1).shape[1])
            self.backbone.train(was_training)
        device = next(self.backbone.parameters()).device
        self.heads.append(nn.Linear(self.feature_size, classes).to(device))
        for norm in self.norms.values():
            norm.ensure(len(self.heads))
        return len(self.heads) - 1

    def capacity(self) -> Capacity:
        """Share of the backbone's maskable weights owned by each trained task, and free."""
        return owner_capacity(self.masks.values(), tasks=self.trained_tasks)

    def used_masks(self) -> dict[str, Tensor]:
        """Per masked layer, which weights some trained task uses (owns, here)."""
        return {name: mask.used() for name, mask in self.masks.items()}

    @property
    def layers(self) -> dict[str, nn.Module]:
        """The masked backbone layers, by name."""
        modules = dict(self.backbone.named_modules())
        return {name: modules[name] for name in self.masks}

    def masked_weights(self) -> dict[str, nn.Parameter]:
        """The stored weight (θ) of each masked layer, by layer name: what the masks share."""
        return {name: stored_weight(layer) for name, layer in self.layers.items()}

    def _own_modules(self, task: int) -> dict[str, nn.Module]:
        """Task `task`'s own modules by their names in the network: head, BatchNorm copies."""
        own = {f"heads.{task}": self.heads[task]}
        return own | {f"backbone.{n}.norms.{task}": m.norms[task] for n, m in self.norms.items()}

    def task_parameters(self, task: int) -> dict[str, nn.Parameter]:
        """Task `task`'s own parameters, by name: its head's and its BatchNorm copies'."""
        own = self._own_modules(task).items()
        return {name: p for prefix, m in own for name, p in m.named_parameters(prefix)}

    def task_buffers(self, task: int) -> dict[str, Tensor]:
        """Task `task`'s own buffers, by name: its BatchNorm copies' statistics."""
        own = self._own_modules(task).items()
        return {name: b for prefix, m in own for name, b in m.named_buffers(prefix)}

    def shared_parameters(self) -> dict[str, nn.Parameter]:
        """Backbone parameters that every task reads whole: biases, shared normalisation
        (not the masked weights, the masks' own state, nor any task's own copies)."""
        apart = [*self.masks.values(), *self.norms.values()]
        ids = {id(p) for module in apart for p in module.parameters()}
        ids |= {id(w) for w in self.masked_weights().values()}
        return _excluding(self.backbone.named_parameters("backbone"), ids)

    def shared_buffers(self) -> dict[str, Tensor]:
        """Backbone buffers that every task reads: shared BatchNorm statistics (not the
        masks' owners, nor any task's own BatchNorm statistics)."""
        apart = [*self.masks.values(), *self.norms.values()]
        ids = {id(b) for module in apart for b in module.buffers()}
        return _excluding(self.backbone.named_buffers("backbone"), ids)

    def get_extra_state(self) -> dict:
        return {
            "trained_tasks": self.trained_tasks,
            "alpha": self.alpha,
            "feature_size": self.feature_size,
        }

    def set_extra_state(self, state: dict) -> None:
        if state.get("alpha") != self.alpha:
            raise ValueError(
                f"checkpoint was saved with alpha={state.get('alpha')}, this network has "
                f"alpha={self.alpha}; build the network with the same alpha"
            )
        if "input_statistics" in state:
            raise _older_layout("input statistics in the extra state")
        self.trained_tasks = int(state["trained_tasks"])
        self.feature_size = state.get("feature_size", self.feature_size)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # Heads the saved network grew (add_head, Avalanche's adaptation) and this one lacks
        # are built from the saved weights' shapes, before the children load: a freshly
        # built network takes a trained one's state as it is.
        if any(key.startswith(f"{prefix}input_statistics.") for key in state_dict):
            raise _older_layout("a diagonal Gaussian of each task's inputs, not input_density")
        head = f"{prefix}heads."
        saved = {int(key[len(head) :].split(".")[0]) for key in state_dict if key.startswith(head)}
        for index in range(len(self.heads), len(saved)):
            weight = state_dict[f"{head}{index}.weight"]
            if self.feature_size is None:
                self.feature_size = int(weight.shape[1])
            self.add_head(int(weight.shape[0]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _point_masks(self, task: int | None) -> None:
        include_free = task is not None and task == self.training_task and self._see_free
        for name, mask in self.masks.items():
            mask.view_task = task
            mask.include_free = include_free and (
                self._free_layers is None or name in self._free_layers
            )

    def _superpose(self, alpha: Tensor | None) -> None:
        superpose_masks(self.masks.values(), alpha)

    def forward_task(self, inputs: Tensor, task: int, *, allow_untrained: bool = False) -> Tensor:
        """Logits of head `task` for a batch that belongs entirely to that task."""
        self.check_task(task, allow_untrained=allow_untrained)
        frozen = self.head_only and task == self.training_task
        with self.viewing(task), torch.no_grad() if frozen else nullcontext():
            features = self.backbone(inputs)
        _check_features(features, self.heads[task])
        return self.heads[task](features)

    def record_inputs(self, task: int, batches: Iterable[Tensor | Sequence[Tensor]]) -> None:
        """Fit task `task`'s model of its training inputs, for the "inputs" task inference
        (`TaskDensity.fit_batches`): batches of inputs, or of (inputs, labels) — labels
        needed with `per_class_inputs`. Tasks are recorded in order; again replaces."""
        self.input_density.fit_batches(task, batches)
