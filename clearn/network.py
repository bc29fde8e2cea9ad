"""A shared backbone with task masks and one output head per task, answering per-task queries."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from clearn.capacity import Capacity, ownership_capacity
from clearn.epn import DEFAULT_ALPHA, DEFAULT_NORMALISE_STEP
from clearn.powerprop import PRUNABLE_LAYER_TYPES, apply_powerprop, prunable_layers
from clearn.task_mask import FREE, TaskMask, add_task_masks
from clearn.task_norm import TaskBatchNorm, add_task_norms

__all__ = ["METHODS", "TaskGuess", "PackedNetwork", "UnknownTaskError", "task_agnostic_logits"]


class UnknownTaskError(ValueError):
    """A query named a task that the network has not been trained on."""


Method = Literal["example", "batch", "one-shot", "inputs", "inputs-batch"]
METHODS: tuple[str, ...] = get_args(Method)

VARIANCE_FLOOR = 0.01
"""Added to each input feature's variance, as a share of the task's mean variance: a feature
that never varied in a task's data (a border pixel) would otherwise rule out that task for
any input where it differs by a hair."""


@dataclass(frozen=True)
class TaskGuess:
    """Inferred task of each example, with its confidence and every task's logits."""

    tasks: Tensor
    """Task of each example (the same for all with method "batch")."""
    confidence: Tensor
    """In [0, 1], 1 when one task was trained. Entropy methods: the normalised-entropy margin
    between the best and the second-best task; input methods: the found task's posterior
    probability under equal priors."""
    logits: list[Tensor | None]
    """Logits of each trained task's view and head, by task (one-shot and input methods:
    only the inferred tasks'; None for the others)."""


def _normalised_entropy(logits: Tensor) -> Tensor:
    log_p = torch.log_softmax(logits, dim=1)
    entropy = -(log_p.exp() * log_p).sum(1)
    return entropy / math.log(logits.shape[1]) if logits.shape[1] > 1 else entropy


def task_agnostic_logits(guess: TaskGuess) -> Tensor:
    """Each example's logits from its inferred task's head, zero-padded to the widest head."""
    present = [(task, logits) for task, logits in enumerate(guess.logits) if logits is not None]
    width = max(logits.shape[1] for _, logits in present)
    out = present[0][1].new_zeros(len(guess.tasks), width)
    for task, task_logits in present:
        rows = guess.tasks == task
        out[rows, : task_logits.shape[1]] = task_logits[rows]
    return out


def _check_task_labels(task_labels: object, batch: int) -> None:
    """One integer task label for the batch, or one per example."""
    if isinstance(task_labels, bool) or not isinstance(task_labels, int | Tensor):
        raise ValueError(
            f"task_labels must be an int or a tensor of integer labels, got {task_labels!r}"
        )
    if isinstance(task_labels, Tensor):
        if task_labels.dtype.is_floating_point or task_labels.dtype == torch.bool:
            raise ValueError(f"task labels must be integers, got a {task_labels.dtype} tensor")
        if task_labels.dim() != 1 or len(task_labels) != batch or batch == 0:
            raise ValueError(
                f"task_labels needs one label per example: {batch} examples, labels of shape "
                f"{tuple(task_labels.shape)}"
            )


class PackedNetwork(nn.Module):
    """backbone → head[task]; every Linear/Conv weight of the backbone carries a TaskMask.

    Tasks are numbered from 0 in the API (as Avalanche's task labels); ownership stores
    task + 1 so that 0 can mean free. A query for task j uses only weights owned by tasks
    0..j and head j, so its answers never change once task j is trained.
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
    ) -> None:
        super().__init__()
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
        # The backbone's structure without parametrizations, on the meta device (no memory),
        # from which export_task builds a plain copy: parametrized modules do not deepcopy.
        self._plain_backbone = [copy.deepcopy(backbone).to("meta")]
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
        self.trained_tasks: int = 0
        """Tasks 0..trained_tasks-1 are trained and answer queries."""
        self.training_task: int | None = None
        """Task being trained now, whose queries also see free weights; None between tasks."""
        self._see_free = False
        self.input_statistics: dict[int, tuple[Tensor, Tensor]] = {}
        """Per task, the mean and variance of each input feature over its training inputs
        (`record_inputs`), on the CPU: what the "inputs" task inference compares with."""

    def _add_masks(self, backbone: nn.Module, layers: dict[str, nn.Module]) -> dict:
        """Register the mask parametrization of each shared layer; return them by name.

        Called once from the constructor; a network with another mask kind overrides it
        (with `select`, `capacity` and `_superpose`)."""
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
            self.select(None)
            self.backbone.eval()
            self.feature_size = int(self.backbone(example).flatten(1).shape[1])
            self.backbone.train(was_training)
        device = next(self.backbone.parameters()).device
        self.heads.append(nn.Linear(self.feature_size, classes).to(device))
        for norm in self.norms.values():
            norm.ensure(len(self.heads))
        return len(self.heads) - 1

    def capacity(self) -> Capacity:
        """Share of the backbone's maskable weights owned by each trained task, and free."""
        return ownership_capacity(
            [m.owner for m in self.masks.values()],
            tasks=self.trained_tasks,
            first_task_code=FREE + 1,
        )

    def used_masks(self) -> dict[str, Tensor]:
        """Per masked layer, which weights some trained task uses (owns, here)."""
        return {name: mask.owner != FREE for name, mask in self.masks.items()}

    @property
    def n_tasks(self) -> int:
        """Number of heads, i.e. tasks the network can answer (trained or not)."""
        return len(self.heads)

    def get_extra_state(self) -> dict:
        return {
            "trained_tasks": self.trained_tasks,
            "alpha": self.alpha,
            "feature_size": self.feature_size,
            "input_statistics": self.input_statistics,
        }

    def set_extra_state(self, state: dict) -> None:
        if state.get("alpha") != self.alpha:
            raise ValueError(
                f"checkpoint was saved with alpha={state.get('alpha')}, this network has "
                f"alpha={self.alpha}; build the network with the same alpha"
            )
        self.trained_tasks = int(state["trained_tasks"])
        self.feature_size = state.get("feature_size", self.feature_size)
        self.input_statistics = dict(state.get("input_statistics", {}))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # Heads the saved network grew (add_head, Avalanche's adaptation) and this one lacks
        # are built from the saved weights' shapes, before the children load: a freshly
        # built network takes a trained one's state as it is.
        head = f"{prefix}heads."
        saved = {int(key[len(head) :].split(".")[0]) for key in state_dict if key.startswith(head)}
        for index in range(len(self.heads), len(saved)):
            weight = state_dict[f"{head}{index}.weight"]
            if self.feature_size is None:
                self.feature_size = int(weight.shape[1])
            self.add_head(int(weight.shape[0]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def show_free_weights(self, visible: bool) -> None:
        """While task `training_task` trains, its queries see free weights (True) or not."""
        self._see_free = visible

    def select(self, task: int | None) -> None:
        """Point every mask at task `task`'s view; None shows all weights."""
        include_free = task is not None and task == self.training_task and self._see_free
        view = None if task is None else task + 1
        for mask in self.masks.values():
            mask.view_task = view
            mask.include_free = include_free
        for norm in self.norms.values():  # None (all weights): the latest task's statistics
            norm.view_task = task if task is not None else max(self.trained_tasks - 1, 0)

    def check_task(self, task: int, *, allow_untrained: bool = False) -> None:
        """Raise UnknownTaskError unless task `task` is trained or being trained.

        With `allow_untrained`, any task that has a head passes: it is answered by the
        weights trained so far and its untrained head (chance level).
        """
        if task == self.training_task:
            return
        limit = self.n_tasks if allow_untrained else self.trained_tasks
        if not 0 <= task < limit:
            known = f"0..{self.trained_tasks - 1}" if self.trained_tasks else "none yet"
            raise UnknownTaskError(
                f"task {task} has not been trained on this network (trained tasks: {known})"
            )

    def forward_task(self, inputs: Tensor, task: int, *, allow_untrained: bool = False) -> Tensor:
        """Logits of head `task` for a batch that belongs entirely to that task."""
        self.check_task(task, allow_untrained=allow_untrained)
        self.select(task)
        features = self.backbone(inputs)
        head = self.heads[task]
        if features.dim() != 2 or features.shape[1] != head.in_features:
            raise ValueError(
                f"the backbone gives features of shape {tuple(features.shape)}, the heads take "
                f"(batch, {head.in_features}): set feature_size to the backbone's output width "
                f"(and flatten its output)"
            )
        return head(features)

    @torch.no_grad()
    def record_inputs(self, task: int, batches: Iterable[Tensor]) -> None:
        """Keep the mean and variance of every input feature over task `task`'s training
        inputs (two numbers per input feature; recording again replaces them), for the
        "inputs" task inference."""
        count, total, squares = 0, None, None
        for batch in batches:
            flat = batch.flatten(1).double()
            count += len(flat)
            total = flat.sum(0) if total is None else total + flat.sum(0)
            squares = (flat**2).sum(0) if squares is None else squares + (flat**2).sum(0)
        if count == 0:
            raise ValueError(f"no inputs given to record for task {task}")
        mean = total / count
        variance = (squares / count - mean**2).clamp_min(0)
        self.input_statistics[task] = (mean.float().cpu(), variance.float().cpu())

    def _input_log_likelihood(self, inputs: Tensor) -> Tensor:
        """(examples, trained tasks): each example's log-likelihood under each task's
        diagonal Gaussian of its inputs."""
        missing = [t for t in range(self.trained_tasks) if t not in self.input_statistics]
        if missing:
            raise ValueError(
                f"tasks {missing} have no input statistics: record them with "
                f"network.record_inputs(task, batches) (EfficientPackNet does after each task)"
            )
        flat = inputs.flatten(1).float()
        scores = []
        for task in range(self.trained_tasks):
            mean, variance = (s.to(flat.device) for s in self.input_statistics[task])
            if mean.shape[0] != flat.shape[1]:
                raise ValueError(
                    f"task {task}'s inputs had {mean.shape[0]} features, these have "
                    f"{flat.shape[1]}"
                )
            variance = variance + VARIANCE_FLOOR * variance.mean().clamp_min(1e-12)
            scores.append(-0.5 * (((flat - mean) ** 2) / variance + variance.log()).sum(1))
        return torch.stack(scores, 1)

    def _infer_task_from_inputs(self, inputs: Tensor, *, per_batch: bool) -> TaskGuess:
        likelihood = self._input_log_likelihood(inputs)
        if per_batch:
            likelihood = likelihood.sum(0, keepdim=True).expand_as(likelihood)
        posterior = torch.softmax(likelihood.double(), 1)
        confidence, tasks = posterior.max(1)
        logits: list[Tensor | None] = [None] * self.trained_tasks
        for task in tasks.unique().tolist():
            logits[task] = self.forward_task(inputs, task)
        return TaskGuess(tasks=tasks, confidence=confidence.float(), logits=logits)

    @torch.no_grad()
    def infer_task(self, inputs: Tensor, *, method: Method | None = None) -> TaskGuess:
        """Guess the task of each example among the trained tasks, with a confidence.

        `method` None: "inputs" where every trained task has its input statistics (as
        EfficientPackNet records them), else "example"; per example, "inputs" found the task
        more often at a fifth of the cost (README, "Task-agnostic inference").

        Each trained task's view answers; the task whose head is most certain — the lowest
        entropy of its softmax, divided by log(classes) so that heads of different widths
        compare — is taken (SupSup, Wortsman et al. 2020, use the same signal). "example"
        decides per example; "batch" averages the entropies over a batch known to come from
        one task; both cost one forward pass per trained task. "one-shot" (a batch from one
        task) takes SupSup's gradient of the entropy of all views superposed: one forward and
        one backward pass to find the task, then the found task's pass (confidence 1: the
        gradient gives no margin). "inputs" (per example) and "inputs-batch" (a batch from one
        task, log-likelihoods summed) take the task under whose diagonal Gaussian of its
        training inputs (`record_inputs`) the input is most likely: no pass per task, then
        the found tasks' passes.
        """
        if method is None:
            recorded = all(t in self.input_statistics for t in range(self.trained_tasks))
            method = "inputs" if recorded else "example"
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if self.trained_tasks == 0:
            raise UnknownTaskError("no task is trained yet: there is no task to infer")
        if method in ("inputs", "inputs-batch"):
            return self._infer_task_from_inputs(inputs, per_batch=method == "inputs-batch")
        if method == "one-shot":
            found = self._one_shot_task(inputs)
            tasks = torch.full((len(inputs),), found, dtype=torch.long)
            logits = [None] * self.trained_tasks
            logits[found] = self.forward_task(inputs, found)
            return TaskGuess(tasks=tasks, confidence=torch.ones(len(inputs)), logits=logits)
        logits = [self.forward_task(inputs, t) for t in range(self.trained_tasks)]
        entropy = torch.stack([_normalised_entropy(task_logits) for task_logits in logits], 1)
        if method == "batch":
            entropy = entropy.mean(0, keepdim=True).expand_as(entropy)
        ranked = entropy.sort(dim=1).values
        margin = ranked[:, 1] - ranked[:, 0] if ranked.shape[1] > 1 else torch.ones(len(inputs))
        return TaskGuess(tasks=entropy.argmin(1), confidence=margin.clamp(0, 1), logits=logits)

    def _one_shot_task(self, inputs: Tensor) -> int:
        """SupSup's one-shot inference (Wortsman et al. 2020) for a batch from one task: the
        backbone runs once with every trained task's view mixed by coefficients α (a weight
        owned by task k counts Σ_{t≥k} α_t, the views being nested), each head reads the
        features, and the task whose coefficient most lowers the entropy of the α-mixed
        output, −∂H/∂α_t largest, is taken: one forward and one backward pass."""
        tasks = self.trained_tasks
        device = inputs.device
        self.select(None)
        try:
            with torch.enable_grad():
                alpha = torch.full((tasks,), 1.0 / tasks, requires_grad=True)
                self._superpose(alpha)
                features = self.backbone(inputs)
                width = max(self.heads[t].out_features for t in range(tasks))
                mixed = sum(
                    alpha[t].to(device)
                    * nn.functional.pad(torch.softmax(self.heads[t](features), 1),
                                        (0, width - self.heads[t].out_features))
                    for t in range(tasks)
                )
                entropy = -(mixed * mixed.clamp_min(1e-12).log()).sum(1).mean()
                (gradient,) = torch.autograd.grad(entropy, alpha)
        finally:
            self._superpose(None)
        return int(gradient.argmin())

    def _superpose(self, alpha: Tensor | None) -> None:
        """Mix every trained task's view by `alpha` (one coefficient per trained task, on the
        CPU), differentiably; None ends the mix. A weight owned by task k counts
        Σ_{t≥k} α_t, the views being nested."""
        if alpha is None:
            for mask in self.masks.values():
                mask.superposition = None
            return
        top = max(int(m.owner.max()) for m in self.masks.values())
        device = next(self.backbone.parameters()).device
        later = torch.flip(torch.cumsum(torch.flip(alpha, [0]), 0), [0])  # Σ_{t≥k} α_t
        unused = alpha.new_zeros(max(top - len(alpha), 0))  # codes of tasks not trained
        coefficients = torch.cat([alpha.new_zeros(1), later, unused]).to(device)
        for mask in self.masks.values():
            mask.superposition = coefficients

    def forward(
        self,
        inputs: Tensor,
        task_labels: Tensor | int | None = None,
        *,
        allow_untrained: bool = False,
    ) -> Tensor:
        """Logits for a batch whose examples may belong to different tasks.

        Examples are grouped by task and each group goes through its own task's view; rows
        are padded with zeros up to the widest head among the batch's tasks. Without task
        labels, each example's task is inferred (`infer_task`) and answered by its head.
        """
        if task_labels is None:
            return task_agnostic_logits(self.infer_task(inputs))
        _check_task_labels(task_labels, len(inputs))
        if isinstance(task_labels, int):
            return self.forward_task(inputs, task_labels, allow_untrained=allow_untrained)
        first = int(task_labels[0])
        if bool((task_labels == first).all()):  # a batch of one task, as in training
            return self.forward_task(inputs, first, allow_untrained=allow_untrained)
        # One stable sort groups the examples by task: each group is then a contiguous slice,
        # and the batch is gathered and scattered back once instead of once per task.
        sorted_labels, order = torch.sort(task_labels, stable=True)
        tasks, counts = torch.unique_consecutive(sorted_labels, return_counts=True)
        tasks, counts = tasks.tolist(), counts.tolist()
        for task in tasks:
            self.check_task(task, allow_untrained=allow_untrained)
        width = max(self.heads[t].out_features for t in tasks)
        grouped = inputs.index_select(0, order)  # 3× faster than inputs[order] on CPU
        grouped_logits = inputs.new_zeros(len(inputs), width)
        start = 0
        for task, count in zip(tasks, counts, strict=True):
            part = self.forward_task(
                grouped[start : start + count], task, allow_untrained=allow_untrained
            )
            grouped_logits[start : start + count, : part.shape[1]] = part.to(inputs.dtype)
            start += count
        return torch.empty_like(grouped_logits).index_copy_(0, order, grouped_logits)

    @torch.no_grad()
    def export_task(self, task: int) -> nn.Sequential:
        """A plain dense copy of task `task`'s subnetwork: backbone then its head, same logits."""
        self.check_task(task)
        self.select(task)
        state = {
            key: value
            for key, value in self.backbone.state_dict().items()
            if ".parametrizations." not in key
        }
        layers = dict(self.backbone.named_modules())
        for name in self.masks:
            state[f"{name}.weight"] = layers[name].weight
        for name in self.norms:  # the task's own BatchNorm, under the plain layer's name
            prefix = f"{name}.norms."
            own = f"{prefix}{task}."
            for key in [k for k in state if k.startswith(prefix)]:
                value = state.pop(key)
                if key.startswith(own):
                    state[f"{name}.{key.removeprefix(own)}"] = value
        device = next(self.parameters()).device
        backbone = copy.deepcopy(self._plain_backbone[0]).to_empty(device=device)
        backbone.load_state_dict(state)
        return nn.Sequential(backbone, copy.deepcopy(self.heads[task]))
