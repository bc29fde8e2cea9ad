"""clearn's TaskNetwork as Avalanche's multi-task model: one object, growing a head per task."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import torch
from avalanche.models import MultiTaskModule
from torch import Tensor, nn

from clearn.network import PackedNetwork
from clearn.task_inference import predict_task_agnostic
from strategies.experience import TASK_LABELS_HOWTO, class_count, classes, task_label

__all__ = ["ABSENT_CLASS_LOGIT", "TaskNetwork", "adapt_heads"]

ABSENT_CLASS_LOGIT = -1000.0
"""The logit of a class its task never trained on: Avalanche's `MultiHeadClassifier`'s
`mask_value`, so that such a class never wins."""


def adapt_heads(model, experience) -> None:
    """Avalanche's adaptation of a clearn network with a head per task (`TaskNetwork`,
    `HatNetwork`): a new task label gets its head, sized from the experience's classes, the
    backbone's width measured on its first example; a head not trained yet is redrawn wider
    when its experience shows more classes."""
    task = task_label(experience)
    classes = class_count(experience)
    if task < model.n_tasks:
        width = model.heads[task].out_features
        if classes > width and task >= model.trained_tasks:
            # Avalanche evaluated the task before training it (eval_every, forward
            # transfer) on an experience that showed fewer of its classes: the head,
            # not trained yet, is drawn again at the width training needs.
            device = model.heads[task].weight.device
            model.heads[task] = nn.Linear(model.feature_size, classes).to(device)
        elif classes > width:
            raise ValueError(
                f"task {task} has class labels up to {classes - 1}, its head has {width} "
                f"outputs: a task's classes must all come in its first experience, each "
                f"task numbering its classes from 0; {TASK_LABELS_HOWTO}"
            )
        return
    if task > model.n_tasks:
        raise ValueError(
            f"task labels must arrive in order 0, 1, 2, …: got task {task} while the "
            f"network has heads for tasks 0..{model.n_tasks - 1}"
        )
    example = experience.dataset[0][0].unsqueeze(0).to(model._adaptation_device)
    model.add_head(classes, example=example)


class TaskNetwork(PackedNetwork, MultiTaskModule):
    """`TaskNetwork(backbone=..., alpha=...)`: masks on the backbone, a head per task label.

    The same network as `clearn.PackedNetwork` (the torch-only mechanism), seen by Avalanche
    as a multi-task model, so strategies call `model(x, task_labels)`. Avalanche adapts it
    before each experience: a new task label gets its head, sized from the experience's
    classes, and the backbone's output width is measured on the experience's first example,
    so a user passes a backbone and nothing about the stream. Task labels arrive in order
    0, 1, 2, …. Tasks with a head but not yet trained (Avalanche evaluates them before
    training, for forward transfer) are answered at chance level by their untrained head,
    which training redraws wider when its experience shows more classes.
    """

    def __init__(self, *, backbone: nn.Module, **options: Any) -> None:
        blueprint = copy.deepcopy(backbone).to("meta")
        super().__init__(backbone=backbone, **options)
        # Not a submodule (no state, no device): what `__reduce__` rebuilds the network from.
        object.__setattr__(self, "_blueprint", blueprint)
        self._options = dict(options)
        """The constructor's arguments other than the backbone, for `__reduce__`."""
        self.trained_classes: dict[int, set[int]] = {}
        """Per task, the classes its training experiences held. Logits of the head's other
        classes are `ABSENT_CLASS_LOGIT`, as in Avalanche's `MultiHeadClassifier`."""

    def __reduce__(self):
        """`torch.save(model)` / pickle go through the state dict (torch refuses to pickle
        parametrized layers): the unpickled network is built afresh from the backbone's
        structure and the constructor's arguments, then loads the state dict (weights,
        masks, heads, trained tasks). Gradients and `requires_grad` flags are not kept."""
        return (
            _rebuild,
            (type(self), self._blueprint, self._options, self.state_dict(), self.training),
        )

    def to(self, *args: Any, **kwargs: Any) -> TaskNetwork:
        """As `nn.Module.to`; a move to the one device every tensor is on already returns
        at once. Avalanche calls `model.to(device)` at each adaptation, several times per
        experience, and the full walk over a head per task grew with the tasks."""
        if len(args) == 1 and not kwargs and isinstance(args[0], str | torch.device):
            device = torch.device(args[0])
            if device.type == "cpu" or device.index is not None:  # "cuda": the current one
                tensors = itertools.chain(self.parameters(), self.buffers())
                if all(tensor.device == device for tensor in tensors):
                    return self
        return super().to(*args, **kwargs)

    def __deepcopy__(self, memo: dict) -> TaskNetwork:
        # deepcopy keeps Python's own procedure (what LwF's copy of the model needs), not
        # the state-dict route of `__reduce__`.
        replica = type(self).__new__(type(self))
        memo[id(self)] = replica
        replica.__dict__ = copy.deepcopy(self.__dict__, memo)
        return replica

    def adaptation(self, experience) -> None:
        adapt_heads(self, experience)
        if self.training:  # as MultiHeadClassifier: classes seen in training only
            self.trained_classes.setdefault(task_label(experience), set()).update(
                classes(experience)
            )

    def forward_task(self, inputs: Tensor, task: int, *, allow_untrained: bool = False) -> Tensor:
        """The core's logits of head `task`, those of classes the task never trained on set
        to `ABSENT_CLASS_LOGIT` (none on streams whose tasks number classes 0..k-1)."""
        logits = super().forward_task(inputs, task, allow_untrained=allow_untrained)
        seen = self.trained_classes.get(task)
        if seen is None or len(seen) == logits.shape[1]:
            return logits
        absent = [c for c in range(logits.shape[1]) if c not in seen]
        index = torch.tensor(absent, device=logits.device)
        return logits.index_fill(1, index, ABSENT_CLASS_LOGIT)

    def get_extra_state(self) -> dict:
        seen = {task: sorted(c) for task, c in self.trained_classes.items()}
        return {**super().get_extra_state(), "trained_classes": seen}

    def set_extra_state(self, state: dict) -> None:
        super().set_extra_state(state)
        saved = state.get("trained_classes", {})
        self.trained_classes = {int(t): {int(c) for c in cs} for t, cs in saved.items()}

    def forward(
        self, x: Tensor, task_labels: Tensor | int | None = None
    ) -> Tensor | dict[int, Tensor]:
        """Logits of each example's task; without task labels, as Avalanche's
        `MultiTaskModule` defines it, every task's logits by task (what LwF distils). The
        task-agnostic answer, each example's task inferred, is `predict_task_agnostic`."""
        if task_labels is None:
            return self.forward_all_tasks(x)
        return super().forward(x, task_labels, allow_untrained=True)

    def forward_all_tasks(self, x: Tensor) -> dict[int, Tensor]:
        return {task: self.forward_single_task(x, task) for task in range(self.n_tasks)}

    def predict_task_agnostic(self, x: Tensor) -> Tensor:
        """Logits without task labels: each example answered by the head of the task
        inferred for it (`clearn.infer_task`), zero-padded to the widest head."""
        return predict_task_agnostic(self, x)

    def forward_single_task(self, x: Tensor, task_label: int) -> Tensor:
        return self.forward_task(x, task_label, allow_untrained=True)


def _rebuild(
    cls: type[TaskNetwork],
    blueprint: nn.Module,
    options: dict[str, Any],
    state: dict[str, Any],
    training: bool,
) -> TaskNetwork:
    """Unpickle a TaskNetwork (`TaskNetwork.__reduce__`), on its tensors' device. The
    backbone is drawn afresh (its layers' own initialisers, then overwritten by the state)
    without moving the caller's random generators."""
    tensors = [v for v in state.values() if isinstance(v, torch.Tensor)]
    device = tensors[0].device if tensors else torch.device("cpu")
    backbone = copy.deepcopy(blueprint).to_empty(device=device)
    with torch.random.fork_rng(devices=[]):
        for module in backbone.modules():
            if callable(getattr(module, "reset_parameters", None)):
                module.reset_parameters()
        network = cls(backbone=backbone, **options)
        network.load_state_dict(state)  # may build heads: within the forked generators
    return network.to(device).train(training)
