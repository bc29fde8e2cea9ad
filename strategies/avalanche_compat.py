"""Every place where clearn departs from, or relies on, how Avalanche 0.6 behaves.

Each patch or relied-on internal here names the Avalanche behaviour it concerns;
`tests/strategies/test_avalanche_compat.py` has a guard test for each, so that an Avalanche
upgrade that changes the behaviour fails a test instead of silently changing what clearn
computes or which plugin hears which callback:

- `TaskAwareForward`, `minibatch_task_labels`: experiences of
  `benchmark_with_validation_stream` lack `task_labels`, so Avalanche calls the model
  without them.
- `TRAINING_ITERATION_EVENTS`, `EVAL_ITERATION_EVENTS`, `template_hook`: the per-iteration
  callbacks of Avalanche's SGD templates and the protected hooks that fire them, which the
  fast dispatch (`strategies.callback_dispatch`) overrides.
- `metric_mode`: `GenericPluginMetric` acts on training steps only in mode "train" and on
  evaluation steps only in mode "eval", read from its protected `_mode`.
- `mark_optimizer_set_up`: a template's first `make_optimizer` resets the optimizer's state
  unless `optimized_param_id` is set (what a restored checkpoint needs).
- `stores_plain_examples`: whether an Avalanche dataset serves its inputs as stored,
  read from its private tree of `_FlatDataWithTransform` nodes (`_datasets`,
  `_transform_groups`, `_frozen_transform_groups`; transforms as `TupleTransform`).
- `stored_examples`: the same datasets' inputs, class and task labels gathered at once, by
  resolving indices through the `FlatData` tree (`_datasets`, `_indices`,
  `_cumulative_sizes`) down to leaf TensorDatasets and label sequences (`ConstantSequence`'s
  `_constant_value`).
- `PackNetPlugin`: Avalanche's plugin rebuilds the optimizer at each experience as
  `type(optimizer)(parameters, **optimizer.defaults)`, which torch's AdamW refuses (its
  defaults list `decoupled_weight_decay`, its constructor does not take it).
- `SynapticIntelligencePlugin`: Avalanche's SI snapshots the weights as
  `param.detach().cpu().flatten()`, on CPU a view of the parameter itself: the anchor and the
  pre-step weights move with it, every importance is zero and SI trains as Naive does.
- `AppendingCSVLogger`: Avalanche's CSVLogger truncates its files when it opens them.
- `WandBLogger`: Avalanche's WandBLogger calls `wandb.util.generate_id` and `wandb.viz`,
  gone from the wandb releases that install beside this stack.

Avalanche's own `save_checkpoint`, which fails on this stack, is replaced by
`strategies.checkpoint` (guarded in `tests/strategies/test_checkpoint.py`).
"""

from __future__ import annotations

import inspect
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from avalanche.benchmarks.utils.data_attribute import DataAttribute
from avalanche.benchmarks.utils.flat_data import ConstantSequence, FlatData
from avalanche.benchmarks.utils.transforms import TupleTransform
from avalanche.evaluation.metric_definitions import GenericPluginMetric
from avalanche.logging import CSVLogger
from avalanche.logging import WandBLogger as _AvalancheWandBLogger
from avalanche.models.packnet import PackNetPlugin as _AvalanchePackNetPlugin
from avalanche.training.plugins import SynapticIntelligencePlugin as _AvalancheSIPlugin
from torch.optim import Optimizer
from torch.utils.data import TensorDataset

from strategies.metric_keys import CAPACITY

__all__ = [
    "CAPACITY_FILE",
    "EVAL_ITERATION_EVENTS",
    "TRAINING_ITERATION_EVENTS",
    "AppendingCSVLogger",
    "PackNetPlugin",
    "SynapticIntelligencePlugin",
    "TaskAwareForward",
    "WandBLogger",
    "fresh_optimizer",
    "mark_optimizer_set_up",
    "metric_mode",
    "minibatch_task_labels",
    "stored_examples",
    "stores_plain_examples",
    "template_hook",
]

TRAINING_ITERATION_EVENTS = (
    "before_training_iteration",
    "before_forward",
    "after_forward",
    "before_backward",
    "after_backward",
    "before_update",
    "after_update",
    "after_training_iteration",
)
"""Callbacks Avalanche's SGD templates fire on every training step."""

EVAL_ITERATION_EVENTS = (
    "before_eval_iteration",
    "before_eval_forward",
    "after_eval_forward",
    "after_eval_iteration",
)
"""Callbacks Avalanche's SGD templates fire on every evaluation step."""


def template_hook(event: str) -> str:
    """The template's protected method that fires `event` to every plugin
    (`_before_forward` calls `trigger_plugins(self, "before_forward")`)."""
    return f"_{event}"


def metric_mode(metric: GenericPluginMetric) -> str:
    """"train" or "eval": the phase whose iteration callbacks a GenericPluginMetric acts on
    (its own callbacks return at once in the other phase)."""
    return metric._mode


def mark_optimizer_set_up(strategy, named_parameters: dict) -> None:
    """Tell a template that its optimizer is set up over `named_parameters`: its first
    `make_optimizer` otherwise resets the state it finds, as at the start of a run."""
    if hasattr(strategy, "optimized_param_id"):
        strategy.optimized_param_id = named_parameters


def _no_input_transform(transform: object) -> bool:
    # Avalanche's TupleTransform holds one transform per element of an example: inputs
    # first, then targets (where Avalanche puts its deterministic class remapping).
    if transform is None:
        return True
    return isinstance(transform, TupleTransform) and transform.transforms[0] is None


def _node_is_plain(node: object) -> bool:
    groups = [getattr(node, a, None) for a in ("_transform_groups", "_frozen_transform_groups")]
    for group in groups:  # every group: which one a nested node applies is not public
        if group is not None and not all(
            map(_no_input_transform, group.transform_groups.values())
        ):
            return False
    # A leaf: a torchvision-style dataset applies its own transforms in __getitem__.
    leaf_transforms = ("transform", "transforms")
    return all(getattr(node, a, None) is None for a in leaf_transforms if not groups[0])


def stores_plain_examples(dataset) -> bool:
    """Whether an Avalanche dataset returns its inputs as stored: no input transform in any
    group at any level, none in a torchvision-style leaf dataset. Its examples can then be
    gathered once through `__getitem__` (which applies Avalanche's deterministic target
    transforms, its class remapping) and served as tensors, the same values every epoch."""
    flat = getattr(dataset, "_flat_data", None)
    if flat is None:
        return False
    pending = [flat]
    while pending:
        node = pending.pop()
        if not _node_is_plain(node):
            return False
        pending.extend(getattr(node, "_datasets", ()))
    return True


def _leaves(node, positions: np.ndarray) -> Iterator[tuple[object, np.ndarray, np.ndarray]]:
    """(leaf, where in `positions`, index in the leaf) for each leaf of a FlatData tree that
    the examples at `positions` come from (what `FlatData._get_idx` does one at a time)."""
    if isinstance(node, DataAttribute):  # an attribute nested in another: its values
        node = node.data
    if not isinstance(node, FlatData):
        yield node, np.arange(len(positions)), positions
        return
    if node._indices is not None:
        positions = np.fromiter(node._indices, np.int64, len(node._indices))[positions]
    starts = np.asarray([0, *node._cumulative_sizes[:-1]], dtype=np.int64)
    child = np.searchsorted(np.asarray(node._cumulative_sizes), positions, side="right")
    for j in np.unique(child):
        chosen = np.flatnonzero(child == j)
        for leaf, where, local in _leaves(node._datasets[j], positions[chosen] - starts[j]):
            yield leaf, chosen[where], local


def _gathered(data, count: int, read) -> torch.Tensor | None:
    """The `count` items of a FlatData tree, `read(leaf, indices)` from each leaf (None
    where a leaf cannot be read at once)."""
    parts = []
    for leaf, where, local in _leaves(data, np.arange(count)):
        values = read(leaf, torch.from_numpy(local))
        if values is None:
            return None
        parts.append((torch.from_numpy(where), values))
    if not parts:
        return None
    first = parts[0][1]
    if len(parts) == 1:  # `_leaves` keeps the order: every item from one leaf, in order
        return first
    out = first.new_empty((count, *first.shape[1:]))
    for where, values in parts:
        out[where] = values
    return out


def _tensor_inputs(leaf, indices: torch.Tensor) -> torch.Tensor | None:
    # A TensorDataset, or a subclass that serves its examples the same way: inputs first.
    if type(leaf).__getitem__ is not TensorDataset.__getitem__ or not leaf.tensors:
        return None
    return leaf.tensors[0][indices]


def _label_values(leaf, indices: torch.Tensor) -> torch.Tensor | None:
    if isinstance(leaf, ConstantSequence):
        return torch.full((len(indices),), leaf._constant_value)
    if len(leaf) == 0:
        return None
    try:
        return torch.as_tensor(np.asarray(leaf))[indices]
    except (TypeError, ValueError):
        return None


def stored_examples(dataset, checks: int = 8) -> tuple[torch.Tensor, ...] | None:
    """(inputs, class labels, task labels) of every example of an Avalanche dataset that
    `stores_plain_examples` over TensorDatasets, read at once from the stored tensors and
    label attributes, or None where it is not such a dataset. `checks` examples spread over
    the dataset are compared with Avalanche's own `__getitem__`; any difference is None."""
    flat = getattr(dataset, "_flat_data", None)
    targets = getattr(dataset, "targets", None)
    tasks = getattr(dataset, "targets_task_labels", None)
    if flat is None or targets is None or tasks is None or not stores_plain_examples(dataset):
        return None
    count = len(dataset)
    gathered = (
        _gathered(flat, count, _tensor_inputs),
        _gathered(targets.data, count, _label_values),
        _gathered(tasks.data, count, _label_values),
    )
    if any(values is None for values in gathered):
        return None
    for i in np.unique(np.linspace(0, count - 1, checks).astype(np.int64)).tolist():
        example = dataset[i]
        if len(example) < 3 or not all(
            torch.equal(torch.as_tensor(stored[i]), torch.as_tensor(given))
            for stored, given in zip(gathered, (example[0], example[1], example[-1]), strict=True)
        ):
            return None
    return gathered


def minibatch_task_labels(strategy):
    """The current minibatch's task labels, or None when the minibatch carries none.

    Avalanche passes task labels to the model only when the experience object has a
    `task_labels` attribute; `benchmark_with_validation_stream` builds experiences without
    it, although each example still carries its task label as the minibatch's last entry.
    """
    batch = strategy.mbatch
    return batch[-1] if batch is not None and len(batch) >= 3 else None


class TaskAwareForward:
    """Template mixin: the model is always called with the minibatch's task labels.

    For task-incremental strategies, whose model needs a task per example; Avalanche's own
    forward drops the labels on experiences that lack the `task_labels` attribute.
    """

    def forward(self):
        labels = minibatch_task_labels(self)
        if labels is None:
            return super().forward()
        return self.model(self.mb_x, labels)


_CSV_FILES = ("training_results.csv", "eval_results.csv")
CAPACITY_FILE = "capacity.csv"
"""One row per capacity value (`Capacity/...`): Avalanche's CSV files hold accuracy and loss."""


def _rows_after_header(path: Path) -> str:
    if not path.is_file():
        return ""
    lines = path.read_text().splitlines(keepends=True)
    return "".join(lines[1:])


class AppendingCSVLogger(CSVLogger):
    """Avalanche 0.6.0's CSVLogger opens its files with "w": a resumed run would keep only
    its own rows. This one keeps the rows already there, then logs as Avalanche does; every
    capacity value goes to `capacity.csv` (metric, value, training iteration)."""

    def __init__(self, log_folder: str) -> None:
        earlier = {name: _rows_after_header(Path(log_folder) / name) for name in _CSV_FILES}
        super().__init__(log_folder)
        for name, handle in zip(_CSV_FILES, (self.training_file, self.eval_file), strict=True):
            handle.write(earlier[name])
            handle.flush()
        path = Path(self.log_folder) / CAPACITY_FILE
        new = not path.is_file()
        self.capacity_file = open(path, "a", buffering=1)  # noqa: SIM115 - closed by close()
        if new:
            self.capacity_file.write("metric,value,training_iteration\n")

    def log_single_metric(self, name, value, x_plot) -> None:
        if name.split("/")[0] == CAPACITY:
            self.capacity_file.write(f"{name},{value},{x_plot}\n")

    def close(self) -> None:
        super().close()
        self.capacity_file.close()


class WandBLogger(_AvalancheWandBLogger):
    """Logs every Avalanche metric to Weights & Biases (`WANDB_MODE=offline` works offline).

    Avalanche 0.6.0's logger calls `wandb.util.generate_id` (gone since wandb 0.24) and
    `wandb.viz` (gone since 0.19), so with any wandb that pip resolves next to torch 2.14
    and TensorBoard it fails on its first call. This subclass starts the run without the
    first and logs numbers (every metric clearn records) without the second; images and
    other values still go through Avalanche's code.
    """

    def before_run(self) -> None:
        if self.init_kwargs is None:
            self.init_kwargs = {}
        run_id = self.init_kwargs.get("id") or os.environ.get("WANDB_RUN_ID")
        self.init_kwargs["id"] = run_id or uuid.uuid4().hex[:8]
        self.wandb.init(**self.init_kwargs)

    def log_single_metric(self, name, value, x_plot) -> None:
        if isinstance(value, float | int):  # Avalanche's check names wandb.viz first
            self.step = x_plot
            self.wandb.log({name: value}, step=self.step)
            return
        super().log_single_metric(name, value, x_plot)


def fresh_optimizer(optimizer: Optimizer, parameters) -> Optimizer:
    """A new optimizer of `optimizer`'s class and settings over `parameters`, passing only
    the settings its constructor takes."""
    accepted = inspect.signature(type(optimizer)).parameters
    settings = {k: v for k, v in optimizer.defaults.items() if k in accepted}
    return type(optimizer)(parameters, **settings)


class PackNetPlugin(_AvalanchePackNetPlugin):
    """Avalanche's PackNetPlugin, its per-experience optimizer reset done with
    `fresh_optimizer` so that every torch optimizer (AdamW included) can be reset."""

    def before_training_exp(self, strategy, *args, **kwargs) -> None:
        strategy.optimizer = fresh_optimizer(strategy.optimizer, strategy.model.parameters())


class SynapticIntelligencePlugin(_AvalancheSIPlugin):
    """Avalanche's SynapticIntelligencePlugin with its two weight snapshots copied (the
    anchor at each experience's start, the weights before each step), on any device."""

    def _snapshot(self, model, target) -> None:
        for name, param in self.allowed_parameters(model, self.excluded_parameters):
            target[name].data = param.detach().cpu().flatten().clone()

    def before_training_exp(self, strategy, **kwargs) -> None:
        super().before_training_exp(strategy, **kwargs)
        self._snapshot(strategy.model, self.ewc_data[0])

    def before_training_iteration(self, strategy, **kwargs) -> None:
        super().before_training_iteration(strategy, **kwargs)
        self._snapshot(strategy.model, self.syn_data["old_theta"])
